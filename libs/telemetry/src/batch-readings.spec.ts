import { batchAsStored } from './batch-readings';

const body = (events: unknown) => JSON.stringify({ device_external_id: 'x', events });

describe('batchAsStored', () => {
  it('counts every event, the late ones, and reads the rest in ts order', () => {
    const payload = body([
      { ts: '2025-01-01T00:00:03Z', data: { t: 3, u: 'x' } },
      { ts: '2025-01-01T00:00:01.5Z', data: { t: 1 } },
      { ts: '2025-01-01T02:00:02.25+02:00', data: { t: 2, u: 9 } },
    ]);
    expect(batchAsStored(payload, new Date('2025-01-01T00:00:01.5Z'), ['t', 'u'])).toEqual({
      inserted: 3,
      late: 1,
      readings: [
        { ts: Date.parse('2025-01-01T00:00:02.25Z'), data: { t: 2, u: 9 } },
        { ts: Date.parse('2025-01-01T00:00:03Z'), data: { t: 3, u: null } },
      ],
    });
  });

  it('reads no metrics unless asked, and nothing is late without a cursor', () => {
    const payload = body([{ ts: '2025-01-01T00:00:00Z', data: {} }]);
    expect(batchAsStored(payload, null)).toEqual({ inserted: 1, late: 0, readings: undefined });
  });

  it.each([
    ['a payload that is not JSON', '{"events": ['],
    ['a payload without events', JSON.stringify({ device_external_id: 'x' })],
    ['events that are not an array', body({ ts: '2025-01-01T00:00:00Z', data: {} })],
    ['an event that is not an object', body([7])],
    ['data that is not an object', body([{ ts: '2025-01-01T00:00:00Z', data: [1] }])],
    ['a ts that is not a string', body([{ ts: 1735689600, data: {} }])],
    ['a ts of another shape', body([{ ts: '2025-01-01 00:00:00Z', data: {} }])],
    ['a ts PostgreSQL would round', body([{ ts: '2025-01-01T00:00:00.0005Z', data: {} }])],
    ['JSON null', 'null'],
  ])('leaves %s to PostgreSQL', (_what, payload) => {
    expect(batchAsStored(payload, null, ['t'])).toBeNull();
  });

  it('reads a metric only as a finite number of its own, -0 as 0', () => {
    const payload =
      '{"events":[{"ts":"2025-01-01T00:00:00Z","data":{"a":-0,"b":"7","constructor":1,"c":1,"c":2}}]}';
    expect(
      batchAsStored(payload, null, ['a', 'b', 'c', 'constructor', 'toString'])?.readings,
    ).toEqual([
      { ts: Date.UTC(2025, 0, 1), data: { a: 0, b: null, c: 2, constructor: 1, toString: null } },
    ]);
    expect(Object.is(batchAsStored(payload, null, ['a'])?.readings?.[0].data.a, 0)).toBe(true);
  });
});
