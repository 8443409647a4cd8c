/**
 * Timestamps of the contract: ISO 8601 with a zone, pure (no Nest, no I/O), for the query
 * validators of every lib (`IsTimestamp`) as well as ingest.
 */

/** ISO 8601 with a zone: 2025-01-01T12:00:00Z, …T12:00:00.123+02:00. */
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const MIN_TS = Date.UTC(1970, 0, 1);
const MAX_TS = Date.UTC(2200, 0, 1);

const CH_PLUS = 43;
const CH_MINUS = 45;
const CH_DOT = 46;
const CH_Z = 90;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0);
}

export function isValidTimestamp(value: string): boolean {
  return !Number.isNaN(timestampMs(value));
}

/**
 * The epoch milliseconds of a valid timestamp of the contract, NaN for anything else.
 * Runs once per event (5,000 per request in the api, again in the worker), so it reads
 * digits with charCodeAt instead of splitting strings, and works the instant out from the
 * fields instead of parsing the string again with `Date.parse` (which was half of it):
 * the same milliseconds as `Date.parse`, the first three fraction digits, the others cut
 * (a property test holds it to `Date.parse` over every field's whole range).
 */
export function timestampMs(value: string): number {
  if (!TS_RE.test(value)) return NaN;
  const two = (i: number) => (value.charCodeAt(i) - 48) * 10 + value.charCodeAt(i + 1) - 48;
  const year = two(0) * 100 + two(2);
  const month = two(5);
  const day = two(8);
  const hour = two(11);
  const minute = two(14);
  const second = two(17);
  // Before 1000 is out of range anyway, and Date.UTC reads years 0-99 as 1900-1999.
  if (year < 1000 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59) return NaN;
  if (second > 59 || day > daysInMonth(year, month)) return NaN;
  let i = 19;
  let fraction = 0;
  if (value.charCodeAt(i) === CH_DOT) {
    // Milliseconds from the first three digits, as Date.parse reads them.
    for (let scale = 100; ++i < value.length && value.charCodeAt(i) !== CH_Z; scale /= 10) {
      const c = value.charCodeAt(i);
      if (c === CH_PLUS || c === CH_MINUS) break;
      if (scale >= 1) fraction += (c - 48) * scale;
    }
  }
  let offset = 0;
  if (value.charCodeAt(i) !== CH_Z) {
    const hh = two(i + 1);
    const mm = two(i + 4);
    if (hh > 23 || mm > 59) return NaN;
    offset = (value.charCodeAt(i) === CH_MINUS ? -1 : 1) * (hh * 60 + mm) * 60000;
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, fraction) - offset;
  return ms >= MIN_TS && ms < MAX_TS ? ms : NaN;
}

const CH_0 = 48;
const CH_9 = 57;
const CH_COLON = 58;
const CH_T = 84;

/** The two decimal digits at `i` as a number, -1 when either is not a digit. */
function twoAt(b: Uint8Array, i: number): number {
  const high = b[i] - CH_0;
  const low = b[i + 1] - CH_0;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : -1;
}

/** The last UTC day {@link utcMsAt} worked out, as yyyymmdd and as epoch ms. */
let lastDay = -1;
let lastDayMs = 0;

/**
 * {@link timestampMs} of the text between two offsets of `bytes` (read as Latin-1), read
 * from the bytes: once per event of a body the worker cuts or the api reads from its
 * bytes, where a string per `ts` and the regular expression were a third of the work.
 * The UTC form devices and the api write (`…Z`) is read here; any other goes through
 * {@link timestampMs} (a property test holds the two together).
 */
export function timestampMsAt(bytes: Buffer, start: number, end: number): number {
  const ms = utcMsAt(bytes, start, end);
  return Number.isNaN(ms) ? timestampMs(bytes.toString('latin1', start, end)) : ms;
}

/**
 * `yyyy-mm-ddThh:mm:ss[.f…]Z` with up to nine fraction digits: its epoch ms as
 * {@link timestampMs} reads it; NaN for anything else (valid or not), which the caller
 * leaves to {@link timestampMs}. Consecutive readings mostly share their day, so the
 * day's calendar check and `Date.UTC` run once per day, not per reading.
 */
function utcMsAt(b: Uint8Array, s: number, end: number): number {
  const length = end - s;
  if (length < 20 || length > 30 || b[end - 1] !== CH_Z) return NaN;
  if (b[s + 4] !== CH_MINUS || b[s + 7] !== CH_MINUS || b[s + 10] !== CH_T) return NaN;
  if (b[s + 13] !== CH_COLON || b[s + 16] !== CH_COLON) return NaN;
  const century = twoAt(b, s);
  const years = twoAt(b, s + 2);
  const month = twoAt(b, s + 5);
  const day = twoAt(b, s + 8);
  const hour = twoAt(b, s + 11);
  const minute = twoAt(b, s + 14);
  const second = twoAt(b, s + 17);
  if ((century | years | month | day | hour | minute | second) < 0) return NaN;
  if (hour > 23 || minute > 59 || second > 59) return NaN;
  let fraction = 0;
  if (length > 20) {
    // A dot and one to nine digits before the Z; milliseconds from the first three.
    if (b[s + 19] !== CH_DOT || length === 21) return NaN;
    let scale = 100;
    for (let i = s + 20; i < end - 1; i++, scale /= 10) {
      const c = b[i];
      if (c < CH_0 || c > CH_9) return NaN;
      if (scale >= 1) fraction += (c - CH_0) * scale;
    }
  }
  const key = ((century * 100 + years) * 100 + month) * 100 + day;
  if (key !== lastDay) {
    const year = century * 100 + years;
    if (year < 1000 || month < 1 || month > 12 || day < 1) return NaN;
    if (day > daysInMonth(year, month)) return NaN;
    lastDayMs = Date.UTC(year, month - 1, day);
    lastDay = key;
  }
  const ms = lastDayMs + ((hour * 60 + minute) * 60 + second) * 1000 + fraction;
  return ms >= MIN_TS && ms < MAX_TS ? ms : NaN;
}

/**
 * Unix seconds as a query parameter spells them: digits, optionally a fraction (what
 * `String(Date.now() / 1000)` or Python's `str(time.time())` write).
 */
const UNIX_SECONDS_RE = /^(\d{1,12})(?:\.(\d*))?$/;
/** 2200-01-01T00:00:00Z: the same years, 1970-2199, as {@link isValidTimestamp}. */
const MAX_UNIX_SECONDS = MAX_TS / 1000;
/** The fraction digits an ISO timestamp of ours may carry (nanoseconds). */
const MAX_FRACTION_DIGITS = 9;

/**
 * `value` in unix seconds (`1735689600`, `1735689600.25`) as the ISO 8601 UTC timestamp
 * of the same instant, its fraction kept as written (up to nanoseconds); undefined when
 * `value` is not unix seconds of the years 1970-2199. String arithmetic, not floating
 * point: `1735689600.123` must not become .122999 and select a reading it should not.
 */
export function unixSecondsToTimestamp(value: string): string | undefined {
  const m = UNIX_SECONDS_RE.exec(value);
  if (!m) return undefined;
  const seconds = Number(m[1]);
  if (seconds >= MAX_UNIX_SECONDS) return undefined;
  const whole = new Date(seconds * 1000).toISOString().slice(0, 19);
  const fraction = (m[2] ?? '').slice(0, MAX_FRACTION_DIGITS);
  return fraction ? `${whole}.${fraction}Z` : `${whole}Z`;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/**
 * The same instant as `value` (which must pass `isValidTimestamp`) with a `Z` offset, for
 * offsets PostgreSQL cannot read. Field arithmetic rather than Date: Date keeps
 * milliseconds only, and the client's fraction (up to nanoseconds) is kept as written.
 */
export function toUtcTimestamp(value: string): string {
  if (!TS_RE.test(value)) throw new RangeError(`not an ISO 8601 timestamp: ${value}`);
  const end = value.length - 6;
  if (value.charCodeAt(value.length - 1) === CH_Z) return value;
  const two = (i: number) => (value.charCodeAt(i) - 48) * 10 + value.charCodeAt(i + 1) - 48;
  const offset = (value.charCodeAt(end) === CH_MINUS ? -1 : 1) * (two(end + 1) * 60 + two(end + 4));
  let year = two(0) * 100 + two(2);
  let month = two(5);
  let day = two(8);
  // An offset is under a day, so the date moves by one day at most.
  let minutes = two(11) * 60 + two(14) - offset;
  if (minutes < 0) {
    minutes += 1440;
    if (--day === 0) {
      if (--month === 0) {
        month = 12;
        year--;
      }
      day = daysInMonth(year, month);
    }
  } else if (minutes >= 1440) {
    minutes -= 1440;
    if (++day > daysInMonth(year, month)) {
      day = 1;
      if (++month === 13) {
        month = 1;
        year++;
      }
    }
  }
  const date = `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}`;
  const hhmm = `${pad2(Math.floor(minutes / 60))}:${pad2(minutes % 60)}`;
  // From index 16: ":ss" and the fraction, as written.
  return `${date}T${hhmm}${value.slice(16, end)}Z`;
}
