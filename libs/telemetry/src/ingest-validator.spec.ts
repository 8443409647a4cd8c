import { isValidTimestamp, validateIngestBody } from './ingest-validator';

const ok = {
  device_external_id: 'sensor-01',
  events: [{ ts: '2025-01-01T12:00:00Z', data: { t: 1 } }],
};

describe('validateIngestBody', () => {
  it('accepts a valid batch with every value type', () => {
    const body = {
      device_external_id: 'sensor-01',
      events: [
        { ts: '2025-01-01T12:00:00.123+02:00', data: { t: 21.5, s: 'on', b: true, n: null } },
        { ts: '2025-01-01T12:00:01Z', data: {} },
      ],
    };
    expect(validateIngestBody(body)).toEqual({ ok: true, body });
  });

  it('accepts 5,000 events and refuses 5,001 as too many', () => {
    const events = Array.from({ length: 5001 }, (_, i) => ({
      ts: new Date(i * 1000).toISOString(),
      data: { v: i },
    }));
    expect(validateIngestBody({ device_external_id: 'd', events: events.slice(0, 5000) }).ok).toBe(
      true,
    );
    const res = validateIngestBody({ device_external_id: 'd', events });
    expect(res).toMatchObject({ ok: false, tooMany: true });
  });

  it.each([
    ['not an object', [], 'body'],
    ['missing device', { events: ok.events }, 'device_external_id'],
    ['missing events', { device_external_id: 'd' }, 'events'],
    ['empty events', { ...ok, events: [] }, 'events'],
    ['unknown top-level field', { ...ok, extra: 1 }, 'extra'],
    ['device id with a space', { ...ok, device_external_id: 'a b' }, 'device_external_id'],
    ['device id too long', { ...ok, device_external_id: 'x'.repeat(129) }, 'device_external_id'],
    ['events not an array', { ...ok, events: {} }, 'events'],
    ['event not an object', { ...ok, events: [1] }, 'events.0'],
    ['missing ts', { ...ok, events: [{ data: {} }] }, 'events.0.ts'],
    [
      'ts without zone',
      { ...ok, events: [{ ts: '2025-01-01T12:00:00', data: {} }] },
      'events.0.ts',
    ],
    ['ts as number', { ...ok, events: [{ ts: 1735732800, data: {} }] }, 'events.0.ts'],
    [
      'ts impossible date',
      { ...ok, events: [{ ts: '2025-02-30T00:00:00Z', data: {} }] },
      'events.0.ts',
    ],
    [
      'ts before 1970',
      { ...ok, events: [{ ts: '1969-12-31T23:59:59Z', data: {} }] },
      'events.0.ts',
    ],
    ['data missing', { ...ok, events: [{ ts: '2025-01-01T00:00:00Z' }] }, 'events.0.data'],
    [
      'data an array',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: [1] }] },
      'events.0.data',
    ],
    [
      'nested object value',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: { a: { b: 1 } } }] },
      'events.0.data.a',
    ],
    [
      'array value',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: { a: [1] } }] },
      'events.0.data.a',
    ],
    [
      'infinite number',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: { a: Infinity } }] },
      'events.0.data.a',
    ],
    [
      'long string value',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: { a: 'x'.repeat(1025) } }] },
      'events.0.data.a',
    ],
    [
      'long metric name',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: { ['m'.repeat(65)]: 1 } }] },
      `events.0.data.${'m'.repeat(65)}`,
    ],
    [
      '65 metrics',
      {
        ...ok,
        events: [
          {
            ts: '2025-01-01T00:00:00Z',
            data: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}`, i])),
          },
        ],
      },
      'events.0.data',
    ],
    [
      'unknown event field',
      { ...ok, events: [{ ts: '2025-01-01T00:00:00Z', data: {}, x: 1 }] },
      'events.0.x',
    ],
  ])('refuses %s', (_label, body, field) => {
    const res = validateIngestBody(body);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.details.map((d) => d.field)).toContain(field);
    for (const d of res.details) expect(d.message.length).toBeGreaterThan(5);
  });

  it('caps the number of details', () => {
    const events = Array.from({ length: 100 }, () => ({ ts: 'bad', data: {} }));
    const res = validateIngestBody({ device_external_id: 'd', events });
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.details).toHaveLength(20);
  });
});

describe('isValidTimestamp', () => {
  it.each([
    '2025-01-01T00:00:00Z',
    '2024-02-29T23:59:59.999999+14:00',
    '2199-12-31T23:59:59+12:00',
  ])('accepts %s', (ts) => expect(isValidTimestamp(ts)).toBe(true));
  it.each([
    '2025-01-01',
    '2023-02-29T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '2025-01-01T25:00:00Z',
    '2200-01-01T00:00:00Z',
    ' 2025-01-01T00:00:00Z',
  ])('refuses %s', (ts) => expect(isValidTimestamp(ts)).toBe(false));
});
