import fc from 'fast-check';

const ws = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n ');
const pad = (text: string) => fc.tuple(ws, ws).map(([a, b]) => `${a}${text}${b}`);
const stringText = fc.oneof(
  fc
    .string({
      unit: fc.constantFrom(
        'a',
        'n',
        't',
        '"',
        '\\',
        '\t',
        '\n',
        'é',
        '𝄞',
        ']',
        '}',
        '{',
        '[',
        ',',
        ':',
        ' ',
        '/',
      ),
      maxLength: 8,
    })
    .map((x) => JSON.stringify(x)),
  fc.constantFrom('"\\u00e9"', '"\\/"', '"\\"\\\\"', '"a\\u0022b"'),
);
const literal = fc.oneof(
  fc.constantFrom('1.50', '-0', '-0.0', '1E-7', '1e309', '-1e-400', '5e-324', '7', '-42'),
  fc.constantFrom('123456789012345678901234567890', '0.1000000000000000055511151231257827'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.constantFrom('true', 'false', 'null'),
);
const { value } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    literal,
    stringText,
    fc.array(tie('value'), { maxLength: 3 }).chain((vs) => pad(`[${vs.join(',')}]`)),
    fc
      .array(fc.tuple(stringText, tie('value')), { maxLength: 3 })
      .chain((kvs) => pad(`{${kvs.map(([k, v]) => `${k}:${v}`).join(',')}}`)),
  ),
}));
const objectText = (entries: Array<[string, string]>) =>
  fc
    .array(ws, { minLength: entries.length * 2 + 1, maxLength: entries.length * 2 + 1 })
    .map(
      (w) =>
        `{${entries.map(([k, v], i) => `${w[2 * i]}${k}${w[2 * i + 1]}:${v}`).join(',')}${w.at(-1)}}`,
    );
const data = fc
  .array(fc.tuple(fc.oneof(stringText, fc.constantFrom('"t"', '"ts"', '"data"')), value), {
    maxLength: 4,
  })
  .chain((kvs) => objectText(kvs));
/** An event: ts and data (sometimes twice, the last wins), other keys, any order. */
const event = (ms: number, escapedTs: boolean) =>
  fc
    .record({
      offset: fc.option(fc.integer({ min: -14 * 60, max: 14 * 60 }), { nil: undefined }),
      data: data,
      earlier: fc.option(fc.tuple(fc.constantFrom('"ts"', '"data"'), data), { nil: undefined }),
      others: fc.array(fc.tuple(fc.constantFrom('"x"', '"tsx"', '"Data"'), value), {
        maxLength: 2,
      }),
      order: fc.boolean(),
    })
    .chain(({ offset, data: d, earlier, others, order }) => {
      const iso = offset === undefined ? new Date(ms).toISOString() : withOffset(ms, offset);
      const ts = `"${escapedTs ? iso.replace('T', '\\u0054') : iso}"`;
      const main: Array<[string, string]> = order
        ? [
            ['"ts"', ts],
            ['"data"', d],
          ]
        : [
            ['"data"', d],
            ['"ts"', ts],
          ];
      return objectText([...(earlier ? [earlier] : []), ...others, ...main]);
    });
/** Most bodies as the cutter expects; some with a ts or the events key written with an escape. */
const escape = fc.oneof(
  { arbitrary: fc.constant('none' as const), weight: 8 },
  { arbitrary: fc.constantFrom('ts' as const, 'key' as const), weight: 1 },
);
/**
 * JSON text of `POST /telemetry` bodies as a client may write them, for the tests that
 * hold the worker's byte-level cut of a body (cutBatch) to JSON.parse and to PostgreSQL's
 * jsonb: whitespace between tokens, keys in any order and repeated (the last wins), escapes,
 * strings holding brackets and quotes, nesting, number literals that JavaScript and jsonb
 * spell differently. Every event's ts is a distinct millisecond, written in UTC or with an
 * offset; data keys include `t`, `ts` and `data`.
 */
export const batchBodies = (): fc.Arbitrary<string> =>
  fc
    .record({
      ms: fc.uniqueArray(fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2026, 0, 1) }), {
        minLength: 1,
        maxLength: 20,
      }),
      escape,
      decoy: fc.boolean(),
    })
    .chain(({ ms, escape, decoy }) =>
      fc
        .tuple(...ms.map((m, i) => event(m, escape === 'ts' && i === 0)))
        .chain((events) =>
          objectText([
            ...(decoy
              ? ([['"events"', '[{"ts":"2021-01-01T00:00:00Z","data":{"decoy":1}}]']] as Array<
                  [string, string]
                >)
              : []),
            ['"device_external_id"', '"x"'],
            [escape === 'key' ? '"\\u0065vents"' : '"events"', `[${events.join(',')}]`],
          ]),
        ),
    );

/** The instant `ms` written in local time at `offset` minutes from UTC. */
function withOffset(ms: number, offset: number): string {
  const local = new Date(ms + offset * 60000).toISOString().slice(0, 23);
  const a = Math.abs(offset);
  const hh = String(Math.floor(a / 60)).padStart(2, '0');
  const mm = String(a % 60).padStart(2, '0');
  return `${local}${offset < 0 ? '-' : '+'}${hh}:${mm}`;
}

/**
 * An evaluation cursor for a batch: none, one anywhere in the bodies' years, or one exactly
 * at an event (at is late, after is not). {@link cursorAt} makes it a Date for a batch.
 */
export const evaluationCursor = fc.oneof(
  fc.constant(null),
  fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2026, 0, 1) }),
  fc.record({ at: fc.nat() }),
);

/** The cursor `choice` picks, for a batch whose events are at `eventMs`. */
export function cursorAt(choice: null | number | { at: number }, eventMs: number[]): Date | null {
  if (choice === null) return null;
  return new Date(typeof choice === 'number' ? choice : eventMs[choice.at % eventMs.length]);
}
