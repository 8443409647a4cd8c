import fc from 'fast-check';
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

describe('isValidTimestamp (property)', () => {
  // Reference: build the UTC date from the fields and check nothing rolled over.
  const reference = (
    y: number,
    mo: number,
    d: number,
    h: number,
    mi: number,
    s: number,
    off: string,
  ): boolean => {
    if (h > 23 || mi > 59 || s > 59) return false;
    const probe = new Date(Date.UTC(y, mo - 1, d));
    if (probe.getUTCFullYear() !== y || probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d)
      return false;
    const ms = Date.parse(
      `${String(y).padStart(4, '0')}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${off}`,
    );
    return ms >= Date.UTC(1970, 0, 1) && ms < Date.UTC(2200, 0, 1);
  };
  const pad = (n: number) => String(n).padStart(2, '0');

  it('agrees with a field-by-field reference', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1960, max: 2210 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.integer({ min: 0, max: 61 }),
        fc.constantFrom('Z', '+00:00', '+14:00', '-12:00', '+05:30'),
        (y, mo, d, h, mi, s, off) => {
          const ts = `${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${off}`;
          return (
            isValidTimestamp(ts) ===
            (mo >= 1 && mo <= 12 && d >= 1 && reference(y, mo, d, h, mi, s, off))
          );
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('accepts every toISOString() in range', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2200, 0, 1) - 1 }), (ms) =>
        isValidTimestamp(new Date(ms).toISOString()),
      ),
    );
  });
});
