/** The contract's timestamp shape, as `timestampMs` checks it. */
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `timestampMs` (`@app/common`) exactly as it was before it stopped calling `Date.parse`
 * (e5c8b0a): the shape, the fields' ranges, then `Date.parse` of the whole string, years
 * 1970-2199. The spec the new one is held to (`libs/common/src/timestamp.spec.ts`) and the
 * baseline it is timed against (`bench/ingest-validator.bench.ts`), so it keeps the old
 * code's cost as well as its answers.
 */
export function timestampMsWithDateParse(value: string): number {
  if (!TS_RE.test(value)) return NaN;
  const two = (i: number) => (value.charCodeAt(i) - 48) * 10 + value.charCodeAt(i + 1) - 48;
  const year = two(0) * 100 + two(2);
  const month = two(5);
  const day = two(8);
  if (month < 1 || month > 12 || day < 1 || two(11) > 23 || two(14) > 59 || two(17) > 59)
    return NaN;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return NaN;
  const ms = Date.parse(value);
  return ms >= Date.UTC(1970, 0, 1) && ms < Date.UTC(2200, 0, 1) ? ms : NaN;
}
