import { copyRows } from './copy-rows';

const DEVICE = '00000000-0000-4000-8000-000000000001';
const rowsOf = (payload: string) => copyRows(payload, DEVICE)?.data.toString().split('\n').slice(0, -1);

describe('copyRows', () => {
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
    ['a key written with an escape', '{"events":[{"\\u0074s":"2025-01-01T00:00:00Z","data":{}}]}'],
    ['an escaped events key', '{"\\u0065vents":[{"ts":"2025-01-01T00:00:00Z","data":{}}]}'],
    ['a ts written with an escape', '{"events":[{"ts":"2025-01-01T00:00:00\\u005a","data":{}}]}'],
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
});
