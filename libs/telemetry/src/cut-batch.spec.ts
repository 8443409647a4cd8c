import { batchBodies, cursorAt, evaluationCursor } from '@app/testing/batch-bodies';
import fc from 'fast-check';
import { batchAsStored, storedMs } from './batch-readings';
import { cutBatch } from './cut-batch';

const copyRows = (payload: string, device: string) => {
  const cut = cutBatch(payload, device, null);
  return cut && { data: cut.copy, rows: cut.stored.inserted };
};

const DEVICE = '00000000-0000-4000-8000-000000000001';
const rowsOf = (payload: string) =>
  copyRows(payload, DEVICE)?.data.toString().split('\n').slice(0, -1);

describe('cutBatch', () => {
  it("cuts each event's ts and data as written, one COPY row per event", () => {
    const payload =
      '{"device_external_id":"x","events":[' +
      '{"ts":"2025-01-01T00:00:00Z","data":{"t":1.50,"big":1e309}},' +
      '{"data":{"s":"a,b]}"},"ts":"2025-01-01T00:00:01.5+02:00","other":[1,{"x":"}"}]}]}';
    const cut = copyRows(payload, DEVICE);
    expect(cut?.rows).toBe(2);
    expect(cut?.data.toString()).toBe(
      `${DEVICE}\t2025-01-01T00:00:00Z\t{"t":1.50,"big":1e309}\n` +
        `${DEVICE}\t2025-01-01T00:00:01.5+02:00\t{"s":"a,b]}"}\n`,
    );
  });

  it('takes the last of duplicated keys, as JSON.parse and jsonb do', () => {
    const payload =
      '{"events":[{"ts":"2025-01-01T00:00:09Z","data":{}}],"device_external_id":"x",' +
      '"events":[{"ts":"2025-01-01T00:00:00Z","data":{"a":1},"ts":"2025-01-01T00:00:02Z","data":{"a":2}}]}';
    expect(rowsOf(payload)).toEqual([`${DEVICE}\t2025-01-01T00:00:02Z\t{"a":2}`]);
  });

  it('keeps whitespace and escapes inside data, escaped for COPY', () => {
    const payload =
      '{ "events" :\n[ {\t"ts" : "2025-01-01T00:00:00Z" ,\r\n "data" : {"q":"say \\"hi\\"\\\\", "n":\t1 } } ] }';
    expect(rowsOf(payload)).toEqual([
      `${DEVICE}\t2025-01-01T00:00:00Z\t{"q":"say \\\\"hi\\\\"\\\\\\\\", "n":\\t1 }`,
    ]);
  });

  it('cuts an empty events array into no rows', () => {
    const cut = copyRows('{"events":[]}', DEVICE);
    expect(cut?.rows).toBe(0);
    expect(cut?.data.length).toBe(0);
  });

  it.each([
    ['an event without data', '{"events":[{"ts":"2025-01-01T00:00:00Z"}]}'],
    ['an event without ts', '{"events":[{"data":{}}]}'],
    ['a ts that is not a string', '{"events":[{"ts":1,"data":{}}]}'],
    ['events that are not an array', '{"events":{"ts":"2025-01-01T00:00:00Z","data":{}}}'],
    ['an event that is not an object', '{"events":[7]}'],
    ['no events key', '{"device_external_id":"x"}'],
    ['a body that is not an object', '[]'],
    ['text after the body', '{"events":[]} x'],
    ['a body cut short', '{"events":[{"ts":"2025-01-01T00:00:00Z","data":{"a":"'],
  ])('declines %s', (_what, payload) => {
    expect(copyRows(payload, DEVICE)).toBeNull();
  });

  it('keeps the escapes of strings and keys inside data', () => {
    // A body with escapes: the keys it reads are checked one by one; data is cut as written.
    const payload =
      '{"note":"a \\"quoted\\" \\\\","events":[{"ts":"2025-01-01T00:00:00Z","data":{"k\\"":"\\\\\\""}}]}';
    expect(rowsOf(payload)).toEqual([
      `${DEVICE}\t2025-01-01T00:00:00Z\t{"k\\\\"":"\\\\\\\\\\\\""}`,
    ]);
  });

  it('reads the count, the late events and the metrics as batchAsStored does', () => {
    const bodies = batchBodies();
    let cut = 0;
    const seen = new Set<boolean>();
    fc.assert(
      fc.property(
        bodies,
        evaluationCursor,
        fc.subarray(['t', 'ts', 'data', 'a', 'é']),
        (payload, choice, metrics) => {
          const events = (JSON.parse(payload) as { events: Array<{ ts: string }> }).events;
          const cursor = cursorAt(
            choice,
            events.map((e) => Date.parse(e.ts)),
          );
          const got = cutBatch(payload, DEVICE, cursor, metrics);
          if (!got) return;
          cut++;
          expect(got.stored).toEqual(batchAsStored(payload, cursor, metrics));
          const ms = events.map((e) => storedMs(e.ts));
          const ascending = ms.every((t, i) => i === 0 || t > ms[i - 1]);
          expect(got.ascending).toBe(ascending);
          seen.add(ascending);
          expect(got.copy.toString().split('\n')).toHaveLength(got.stored.inserted + 1);
        },
      ),
      { numRuns: 2000 },
    );
    expect(cut).toBeGreaterThan(1000);
    expect(seen.size).toBe(2);
  });

  it('declines what batchAsStored leaves to PostgreSQL', () => {
    const body = (ts: string, data = '{}') => `{"events":[{"ts":"${ts}","data":${data}}]}`;
    expect(cutBatch(body('2025-01-01T00:00:00.0005Z'), DEVICE, null)).toBeNull();
    expect(cutBatch(body('2025-01-01 00:00:00Z'), DEVICE, null)).toBeNull();
    expect(cutBatch(body('2025-01-01T00:00:00Z', '[1]'), DEVICE, null)).toBeNull();
    expect(cutBatch(body('2025-01-01T00:00:00Z', '"x"'), DEVICE, null)).toBeNull();
  });

  it('reads keys and a ts written with escapes, and writes the ts out decoded', () => {
    const payload =
      '{"\\u0065vents":[{"\\u0074s":"2025-01-01\\u005400:00:00Z","data":{"\\u0074":1,"u":2}}]}';
    const got = cutBatch(payload, DEVICE, null, ['t']);
    expect(got?.stored).toEqual({
      inserted: 1,
      late: 0,
      readings: [{ ts: Date.UTC(2025, 0, 1), data: { t: 1 } }],
    });
    expect(got?.copy.toString()).toBe(`${DEVICE}\t2025-01-01T00:00:00Z\t{"\\\\u0074":1,"u":2}\n`);
  });
});
