import Ajv, { ErrorObject, SchemaValidateFunction } from 'ajv';
import { ErrorDetail, isStorableText, timestampMs, toUtcTimestamp } from '@app/common';
import {
  MAX_EVENTS_PER_BATCH,
  MAX_FUTURE_MS,
  MAX_METRIC_NAME_LENGTH,
  MAX_METRICS_PER_EVENT,
  MAX_STRING_VALUE_LENGTH,
} from './telemetry.constants';

/**
 * Validation of `POST /telemetry` bodies, pure (no Nest, no I/O).
 *
 * Why ajv and not class-validator: a 5,000-event body is 5,000 nested objects.
 * class-validator instantiates and walks each one (~32 ms of event-loop time measured
 * here); this compiled schema checks the same body in ~0.1 ms, so the api stays
 * responsive under ingest load. Errors are mapped to the same `{field, message}` details
 * as everywhere else.
 */
export interface IngestEvent {
  ts: string;
  data: Record<string, number | string | boolean | null>;
}

export interface IngestBody {
  device_external_id: string;
  events: IngestEvent[];
}

const CH_PLUS = 43;
const CH_MINUS = 45;

/**
 * RFC 3339 allows offsets up to ±23:59, and so does `isValidTimestamp`, but PostgreSQL
 * refuses ±16:00 and beyond ("time zone displacement out of range"), which in the worker
 * would fail the whole batch. Runs once per accepted event, hence a look at two
 * characters: the shape was already checked.
 */
export function pgAcceptsOffset(value: string): boolean {
  const sign = value.charCodeAt(value.length - 6);
  if (sign !== CH_PLUS && sign !== CH_MINUS) return true;
  const hour =
    (value.charCodeAt(value.length - 5) - 48) * 10 + value.charCodeAt(value.length - 4) - 48;
  return hour < 16;
}

/**
 * What the one pass over a body counts on the way, passed to the compiled schema as its
 * context (`validate.call(tally, body)`): ajv hands it to keywords as `this`.
 */
interface Tally {
  /** Metric values that are not JSON numbers (strings, booleans, nulls). */
  nonNumeric: number;
  /** The latest `ts` accepted, epoch ms: {@link MAX_FUTURE_MS} after the request's now. */
  latestMs: number;
}

/** 1 to 128 characters, none a control character or whitespace. */
const DEVICE_EXTERNAL_ID_PATTERN = '^[^\\p{Cc}\\s]{1,128}$';
/** {@link DEVICE_EXTERNAL_ID_PATTERN} as the schema reads it (ajv's unicodeRegExp: `u`). */
export const DEVICE_EXTERNAL_ID_RE = new RegExp(DEVICE_EXTERNAL_ID_PATTERN, 'u');

// unicodeRegExp: the external id pattern uses \p{Cc}. passContext: keywords see the Tally.
const ajv = new Ajv({ allErrors: true, strict: true, unicodeRegExp: true, passContext: true });

/**
 * A reading's `ts`: a timestamp of the contract (1970-2199, a zone) no later than
 * `latestMs`, in one parse. A later one has no partition to go to; and once evaluated it
 * would move the device's evaluation cursor past every real reading to come, which would
 * all be late (stored, never evaluated).
 */
const readingTs: SchemaValidateFunction = function (
  this: Tally,
  _schema: boolean,
  value: string,
): boolean {
  const ms = timestampMs(value);
  if (ms <= this.latestMs) return true;
  readingTs.errors = [
    { keyword: 'readingTs', params: Number.isNaN(ms) ? {} : { latestMs: this.latestMs } },
  ];
  return false;
};
ajv.addKeyword({
  keyword: 'readingTs',
  type: 'string',
  schemaType: 'boolean',
  validate: readingTs,
});
// Text PostgreSQL's jsonb cannot hold, though JSON.parse accepts it (NUL, unpaired UTF-16
// surrogates), is refused here (422) rather than failing in the worker.
ajv.addKeyword({
  // One check per metric value instead of a four-branch anyOf (the hottest path of a
  // 5,000-event body). Finite: JSON.parse turns 1e999 into Infinity; rules must never see one.
  // It also counts the values that are not numbers, the one walk over every value.
  keyword: 'metricValue',
  schemaType: 'boolean',
  validate: function (this: Tally, _schema: boolean, v: unknown) {
    if (typeof v === 'number') return Number.isFinite(v);
    this.nonNumeric++;
    return (
      v === null ||
      typeof v === 'boolean' ||
      (typeof v === 'string' && v.length <= MAX_STRING_VALUE_LENGTH && isStorableText(v))
    );
  },
  errors: false,
});

ajv.addKeyword({
  keyword: 'storableText',
  type: 'string',
  schemaType: 'boolean',
  validate: (_schema: boolean, v: string) => isStorableText(v),
  errors: false,
});

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['device_external_id', 'events'],
  properties: {
    device_external_id: { type: 'string', pattern: DEVICE_EXTERNAL_ID_PATTERN, storableText: true },
    events: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_EVENTS_PER_BATCH,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['ts', 'data'],
        properties: {
          ts: { type: 'string', readingTs: true },
          data: {
            type: 'object',
            maxProperties: MAX_METRICS_PER_EVENT,
            propertyNames: { minLength: 1, maxLength: MAX_METRIC_NAME_LENGTH, storableText: true },
            additionalProperties: { metricValue: true },
          },
        },
      },
    },
  },
} as const;

const validate = ajv.compile<IngestBody>(schema);

/** `validate`, counting into `tally` on the way (`call` keeps no type guard of its own). */
function validates(tally: Tally, body: unknown): body is IngestBody {
  return validate.call(tally, body) as boolean;
}

const MAX_DETAILS = 20;

/**
 * `rewritten`: some `ts` had an offset PostgreSQL refuses and now reads as UTC in `body`,
 * so the raw request text no longer says what was accepted; queue `body` re-serialised.
 * `nonNumeric`: metric values that are not JSON numbers (stored, ignored by rules and
 * aggregates), counted during validation rather than by a second walk.
 */
export type IngestValidation =
  | { ok: true; body: IngestBody; rewritten: boolean; nonNumeric: number }
  | { ok: false; tooMany: boolean; details: ErrorDetail[] };

/** `now`: the api's clock, epoch ms (a parameter for tests). */
export function validateIngestBody(body: unknown, now = Date.now()): IngestValidation {
  const tally: Tally = { nonNumeric: 0, latestMs: now + MAX_FUTURE_MS };
  if (validates(tally, body)) {
    let rewritten = false;
    for (const event of body.events) {
      if (pgAcceptsOffset(event.ts)) continue;
      event.ts = toUtcTimestamp(event.ts);
      rewritten = true;
    }
    return { ok: true, body, rewritten, nonNumeric: tally.nonNumeric };
  }
  const errors = validate.errors ?? [];
  const tooMany = errors.some((e) => e.instancePath === '/events' && e.keyword === 'maxItems');
  return { ok: false, tooMany, details: toDetails(errors) };
}

function toDetails(errors: ErrorObject[]): ErrorDetail[] {
  const seen = new Set<string>();
  const details: ErrorDetail[] = [];
  for (const e of errors) {
    const detail = describe(e);
    const id = `${detail.field}|${detail.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    details.push(detail);
    if (details.length >= MAX_DETAILS) break;
  }
  return details;
}

function describe(e: ErrorObject): ErrorDetail {
  const path = e.instancePath.split('/').slice(1).map(unescapePointer);
  const field = (name: string) => [...path, name].join('.');
  const here = path.join('.') || 'body';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return {
        field: field(String(p.missingProperty)),
        message: `${String(p.missingProperty)} is required`,
      };
    case 'additionalProperties':
      return {
        field: field(String(p.additionalProperty)),
        message: `unknown field ${String(p.additionalProperty)}`,
      };
    case 'minItems':
      return { field: here, message: 'events must hold at least 1 event' };
    case 'maxItems':
      return { field: here, message: `a batch holds at most ${MAX_EVENTS_PER_BATCH} events` };
    case 'maxProperties':
      return { field: here, message: `data holds at most ${MAX_METRICS_PER_EVENT} metrics` };
    case 'propertyNames':
    case 'minLength':
    case 'maxLength':
      // Only metric names reach here: values are checked by metricValue.
      return {
        field: field(String(p.propertyName ?? e.propertyName)),
        message: `metric names are 1-${MAX_METRIC_NAME_LENGTH} characters`,
      };
    case 'readingTs':
      return {
        field: here,
        message:
          typeof p.latestMs === 'number'
            ? `ts is more than ${MAX_FUTURE_MS / 3600000} hours ahead of the server's clock: readings up to ${new Date(p.latestMs).toISOString()} are accepted`
            : 'ts must be an ISO 8601 timestamp with a zone (Z or ±hh:mm), years 1970-2199',
      };
    case 'pattern':
      return {
        field: here,
        message: 'device_external_id must be 1-128 characters without spaces or control characters',
      };
    case 'storableText':
      return {
        field: here,
        message: 'text must not contain NUL characters or unpaired UTF-16 surrogates',
      };
    case 'metricValue':
      return {
        field: here,
        message: `a metric value is a finite number, a string of at most ${MAX_STRING_VALUE_LENGTH} characters (no NUL, no unpaired surrogates), a boolean or null`,
      };
    case 'type':
      return {
        field: here,
        message: `${path[path.length - 1] ?? 'body'} must be ${describeType(String(p.type))}`,
      };
    default:
      return { field: here, message: e.message ?? 'is invalid' };
  }
}

function describeType(type: string): string {
  return type === 'object' ? 'an object' : type === 'array' ? 'an array' : `a ${type}`;
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

const CH_QUOTE = 34;
const CH_BACKSLASH = 92;
const CH_DOT = 46;
const CH_0 = 48;
const CH_9 = 57;
const CH_E = 69;
const CH_e = 101;

/** A non-zero literal of 10^300 or more, or below 10^-300, may not cast to float8 (22003). */
const MAX_ORDER = 300;
/** numeric's limit on digits after the point (written digits less the exponent). */
const MAX_NUMERIC_SCALE = 16383;
/** numeric refuses an exponent of INT_MAX / 2 or more, whatever the digits. */
const MAX_NUMERIC_EXPONENT = 1073741823;
/** Exponents stop growing past this (far beyond numeric's), so a double stays exact. */
const EXPONENT_CAP = 1e12;

/**
 * Whether `raw` (JSON that parsed) holds a number literal that JSON.parse and PostgreSQL
 * read differently enough to matter. JavaScript rounds every literal to a double (1e-400
 * becomes 0), while jsonb keeps the exact decimal: a later `::float8` cast then fails for
 * a non-zero value below 1e-300 or of 1e300 and more (the exact limits are near 1e±308;
 * 300 leaves a margin), and jsonb refuses outright a literal whose scale or exponent is
 * beyond numeric (`0e-16384`, `1.` and 16,384 zeros). A body with any is queued as
 * re-serialised from its parse, so what is stored is exactly what was validated. Extra
 * digits of precision are not flagged: the cast rounds them as JSON.parse did.
 *
 * The bytes of the UTF-8 text are read (what the api queues; a string is encoded first):
 * every character it looks at is ASCII, and no byte of a multi-byte character is.
 * One left-to-right pass (bytes, and indexOf to skip strings), no regex: this runs
 * over every raw body, up to megabytes, and a pattern over runs of digits backtracks
 * (seconds of blocked event loop for 8 MiB of them). Orders of magnitude come from digit
 * positions and the exponent, never from building the number.
 */
export function needsNormalising(text: string | Buffer): boolean {
  const raw = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const n = raw.length;
  let i = 0;
  while (i < n) {
    const c = raw[i];
    if (c === CH_QUOTE) {
      // Skip the string (numbers in text are text for jsonb too). indexOf, because strings
      // are most of a typical body; a quote after an odd run of backslashes is escaped.
      let end = raw.indexOf(CH_QUOTE, i + 1);
      for (;;) {
        if (end < 0) return false;
        let b = end - 1;
        while (raw[b] === CH_BACKSLASH) b--;
        if ((end - b) % 2 === 1) break;
        end = raw.indexOf(CH_QUOTE, end + 1);
      }
      i = end + 1;
    } else if (c === CH_MINUS || (c >= CH_0 && c <= CH_9)) {
      if (c === CH_MINUS) i++;
      let firstNonZero = -1;
      let d = raw[i];
      while (d >= CH_0 && d <= CH_9) {
        if (firstNonZero < 0 && d !== CH_0) firstNonZero = i;
        d = raw[++i];
      }
      const point = i;
      let scale = 0;
      if (d === CH_DOT) {
        d = raw[++i];
        while (d >= CH_0 && d <= CH_9) {
          if (firstNonZero < 0 && d !== CH_0) firstNonZero = i;
          d = raw[++i];
        }
        scale = i - point - 1;
      }
      let exponent = 0;
      if (d === CH_e || d === CH_E) {
        d = raw[++i];
        const negative = d === CH_MINUS;
        if (negative || d === CH_PLUS) d = raw[++i];
        while (d >= CH_0 && d <= CH_9) {
          if (exponent < EXPONENT_CAP) exponent = exponent * 10 + d - CH_0;
          d = raw[++i];
        }
        if (negative) exponent = -exponent;
      }
      if (exponent >= MAX_NUMERIC_EXPONENT || exponent <= -MAX_NUMERIC_EXPONENT) return true;
      if (scale - exponent > MAX_NUMERIC_SCALE) return true;
      if (firstNonZero >= 0) {
        // The power of ten of the leading digit: 120 -> 2, 0.05 -> -2.
        const order =
          (firstNonZero < point ? point - 1 - firstNonZero : point - firstNonZero) + exponent;
        if (order < -MAX_ORDER || order >= MAX_ORDER) return true;
      }
    } else {
      i++;
    }
  }
  return false;
}
