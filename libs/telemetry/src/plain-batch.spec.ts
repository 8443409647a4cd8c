import fc from 'fast-check';
import { validateIngestBody } from './ingest-validator';
import { readPlainBatch } from './plain-batch';

const NOW = Date.UTC(2025, 5, 1);
const DAY = 24 * 3600 * 1000;

/** Whitespace JSON allows between tokens, and sometimes a character it does not. */
const ws = fc.oneof(
  { arbitrary: fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n '), weight: 50 },
  { arbitrary: fc.constant('\f'), weight: 1 },
);
const key = (k: string) => JSON.stringify(k);
const ts = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .integer({ min: NOW - 400 * DAY, max: NOW + 2 * DAY })
      .map((ms) => JSON.stringify(new Date(ms).toISOString())),
  },
  fc.constantFrom(
    '"2025-01-01T00:00:00+15:59"',
    '"2025-01-01T00:00:00+16:00"',
    '"2025-01-01T00:00:00-23:00"',
    '"2025-01-01T00:00:00.1234Z"',
    '"2025-02-30T00:00:00Z"',
    '"2025-01-01 00:00:00Z"',
    '"1969-12-31T23:59:59Z"',
    '"2025-01-01T00:00:00"',
    '"2025-01-01T00:00:00\\u005a"',
    '1735689600000',
    'null',
  ),
);
const name = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('t', 'temp', 'x', 'ts', 'data', 'a'.repeat(64)) },
  { weight: 1, arbitrary: fc.constantFrom('', 'é', 'a'.repeat(65)) },
);
const value = fc.oneof(
  {
    weight: 60,
    arbitrary: fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
      fc.constantFrom('"ok"', 'true', 'null', '21.5', '-3'),
    ),
  },
  fc.constantFrom('1e999', '-1e999', '1e308', '-0', '1.50', '1E-7', '01', '1.', '-', '.5', '+1'),
  fc.constantFrom('1'.repeat(299), '1'.repeat(309), `0.${'0'.repeat(400)}1`),
  fc.constantFrom('true', 'false', 'null', 'nul', 'truex'),
  fc.constantFrom('"ok"', '""', '"é"', '"a\\nb"', `"${'s'.repeat(1024)}"`, `"${'s'.repeat(1025)}"`),
  fc.constantFrom('"\t"', '{}', '[]', '{"a":1}', '[1]'),
);
/** An object's text from its entries, whitespace anywhere. */
const objectText = (entries: Array<[string, string]>) =>
  fc
    .array(ws, { minLength: entries.length * 3 + 1, maxLength: entries.length * 3 + 1 })
    .map(
      (w) =>
        `{${entries.map(([k, v], i) => `${w[3 * i]}${k}${w[3 * i + 1]}:${w[3 * i + 2]}${v}`).join(',')}${w.at(-1)}}`,
    );
const data = fc
  .array(fc.tuple(name.map(key), value), { maxLength: 5 })
  .chain((kvs) => objectText(kvs));
/** Mostly `{ts, data}`; sometimes a key missing, repeated or unknown, or a value of another type. */
const event = fc
  .record({
    ts,
    data: fc.oneof({ arbitrary: data, weight: 9 }, fc.constantFrom('[]', '"x"', 'null')),
    shape: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom('ts-data', 'data-ts') },
      { weight: 1, arbitrary: fc.constantFrom('no-ts', 'no-data', 'twice', 'extra') },
    ),
  })
  .chain(({ ts: t, data: d, shape }) => {
    const entries: Record<string, Array<[string, string]>> = {
      'ts-data': [
        ['"ts"', t],
        ['"data"', d],
      ],
      'data-ts': [
        ['"data"', d],
        ['"ts"', t],
      ],
      'no-ts': [['"data"', d]],
      'no-data': [['"ts"', t]],
      twice: [
        ['"ts"', t],
        ['"data"', '{"t":1e999}'],
        ['"data"', d],
      ],
      extra: [
        ['"ts"', t],
        ['"data"', d],
        ['"x"', '1'],
      ],
    };
    return objectText(entries[shape]);
  });
const deviceId = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('d1', 'dev-01', 'x'.repeat(128)) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(129), '', 'a b', 'é', '\u007f') },
);
/** A body: mostly well formed, sometimes cut short, or with a stray byte. */
const bodies = fc
  .record({
    device: deviceId.map(key),
    events: fc.array(event, { minLength: 1, maxLength: 4 }),
    order: fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom('device-events', 'events-device') },
      { weight: 1, arbitrary: fc.constantFrom('no-device', 'twice', 'extra') },
    ),
    damage: fc.oneof(
      { weight: 10, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.constantFrom('', 'x', ',', '}', '"', ' ')) },
    ),
  })
  .chain(({ device, events, order, damage }) => {
    const list = `[${events.join(',')}]`;
    const entries: Record<string, Array<[string, string]>> = {
      'device-events': [
        ['"device_external_id"', device],
        ['"events"', list],
      ],
      'events-device': [
        ['"events"', list],
        ['"device_external_id"', device],
      ],
      'no-device': [['"events"', list]],
      twice: [
        ['"device_external_id"', device],
        ['"events"', '[]'],
        ['"events"', list],
      ],
      extra: [
        ['"device_external_id"', device],
        ['"events"', list],
        ['"more"', 'true'],
      ],
    };
    return objectText(entries[order]).map((text) => {
      if (!damage) return text;
      const at = damage[0] % (text.length + 1);
      return `${text.slice(0, at)}${damage[1]}${text.slice(at + (damage[1] === '' ? 1 : 0))}`;
    });
  });

/** What the full path (JSON.parse and the schema) makes of a body, in readPlainBatch's terms. */
function fullPath(text: string) {
  let parsed: { device_external_id: string; events: unknown[] };
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const checked = validateIngestBody(parsed, NOW);
  if (!checked.ok) return 'invalid';
  if (checked.rewritten) return 'rewritten';
  return {
    deviceExternalId: checked.body.device_external_id,
    events: checked.body.events.length,
    nonNumeric: checked.nonNumeric,
  };
}

describe('readPlainBatch', () => {
  it('answers only for bodies the full validation accepts as they are, with the same counts', () => {
    let answered = 0;
    let runs = 0;
    fc.assert(
      fc.property(bodies, (text) => {
        runs++;
        const plain = readPlainBatch(Buffer.from(text), NOW);
        if (plain === null) return;
        answered++;
        expect(plain).toEqual(fullPath(text));
      }),
      { numRuns: 5000 },
    );
    // The generator reaches the fast path often enough for the property to mean something.
    expect(answered / runs).toBeGreaterThan(0.05);
  });

  it('answers for plain bodies as clients write them', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            ts: fc
              .integer({ min: NOW - 400 * DAY, max: NOW + DAY })
              .map((ms) => new Date(ms).toISOString()),
            data: fc.dictionary(
              fc.constantFrom('temperature', 'humidity', 'status', 'ok', 'n'),
              fc.oneof(
                fc.double({ noNaN: true, noDefaultInfinity: true }),
                fc.integer(),
                fc.constantFrom('ok', true, false, null),
              ),
            ),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        fc.boolean(),
        (events, pretty) => {
          const body = { device_external_id: 'dev-1', events };
          const text = pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body);
          const plain = readPlainBatch(Buffer.from(text), NOW);
          expect(plain).not.toBeNull();
          expect(plain).toEqual(fullPath(text));
        },
      ),
      { numRuns: 500 },
    );
  });

  it.each([
    [
      'a BOM',
      `\uFEFF{"device_external_id":"d","events":[{"ts":"2025-01-01T00:00:00Z","data":{}}]}`,
    ],
    [
      'an escape',
      '{"device_external_id":"d\\u0031","events":[{"ts":"2025-01-01T00:00:00Z","data":{}}]}',
    ],
    [
      'a non-ASCII name',
      '{"device_external_id":"d","events":[{"ts":"2025-01-01T00:00:00Z","data":{"é":1}}]}',
    ],
    [
      '5,001 events',
      JSON.stringify({
        device_external_id: 'd',
        events: Array(5001).fill({ ts: '2025-01-01T00:00:00Z', data: {} }),
      }),
    ],
    [
      'a repeated metric among many',
      JSON.stringify({
        device_external_id: 'd',
        events: [
          {
            ts: '2025-01-01T00:00:00Z',
            data: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, i])),
          },
        ],
      }).replace('"m9"', '"m0"'),
    ],
    [
      '65 metrics',
      JSON.stringify({
        device_external_id: 'd',
        events: [
          {
            ts: '2025-01-01T00:00:00Z',
            data: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}`, i])),
          },
        ],
      }),
    ],
    [
      'a literal cut short at the end',
      '{"device_external_id":"d","events":[{"ts":"2025-01-01T00:00:00Z","data":{"a":tru',
    ],
  ])('leaves %s to the full path', (_, text) => {
    expect(readPlainBatch(Buffer.from(text), NOW)).toBeNull();
  });

  it('takes 5,000 events and 64 metrics', () => {
    const data = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`m${i}`, i]));
    const events = Array.from({ length: 5000 }, (_, i) => ({
      ts: new Date(NOW - i * 1000).toISOString(),
      data: i === 0 ? data : { t: 1, s: 'x' },
    }));
    const text = JSON.stringify({ device_external_id: 'd', events });
    expect(readPlainBatch(Buffer.from(text), NOW)).toEqual({
      deviceExternalId: 'd',
      events: 5000,
      nonNumeric: 4999,
    });
  });
});
