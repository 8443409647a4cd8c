import { timestampMsAt } from '@app/common';
import { isAscii } from 'node:buffer';
import { DEVICE_EXTERNAL_ID_RE, pgAcceptsOffset } from './ingest-validator';
import {
  BACKSLASH,
  COLON,
  COMMA,
  CR,
  DIGIT_0,
  DIGIT_1,
  DIGIT_9,
  DOT,
  LBRACE,
  LBRACKET,
  LF,
  LOWER_E,
  MINUS,
  PLUS,
  QUOTE,
  RBRACE,
  RBRACKET,
  SPACE,
  TAB,
  UPPER_E,
  UPPER_Z,
} from './json-bytes';
import {
  MAX_EVENTS_PER_BATCH,
  MAX_FUTURE_MS,
  MAX_METRIC_NAME_LENGTH,
  MAX_METRICS_PER_EVENT,
  MAX_STRING_VALUE_LENGTH,
} from './telemetry.constants';

/** What the api needs of a body {@link readPlainBatch} accepted. */
export interface PlainBatch {
  deviceExternalId: string;
  events: number;
  /** Metric values that are not JSON numbers, as {@link validateIngestBody} counts them. */
  nonNumeric: number;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const KEY_DEVICE = Buffer.from('device_external_id');
const KEY_EVENTS = Buffer.from('events');
const KEY_TS = Buffer.from('ts');
const KEY_DATA = Buffer.from('data');
/** Fewer integer digits than this, and no exponent: the literal is a finite double. */
const SURELY_FINITE_DIGITS = 300;
/** Up to this many metrics, a repeated name is found by comparing with each earlier one. */
const PAIRWISE_KEYS = 8;

/** Not the plain shape: the body goes through JSON.parse and the schema instead. */
class NotPlain extends Error {}
const NOT_PLAIN = new NotPlain();

/**
 * A `POST /telemetry` body the api can accept straight from its bytes, without
 * `JSON.parse` and the schema: null unless the bytes are ASCII JSON of the plain shape,
 * `{"device_external_id": "…", "events": [{"ts": "…", "data": {…}}, …]}` (whitespace
 * anywhere JSON allows it, keys in any order), every part of which the full validation
 * ({@link validateIngestBody}) would accept as it is: no escape in any string, no key
 * twice, no other key, 1 to 5,000 events, each `ts` a timestamp of the contract no later
 * than `now` plus a day with an offset PostgreSQL takes, each `data` an object of at
 * most 64 metrics named in 1 to 64 characters, each value a finite number, a string of at
 * most 1,024 characters, a boolean or null.
 *
 * Null says nothing about validity: anything else (an error to report, a non-ASCII
 * string, an escape, a repeated key) takes the full path, which accepts it or explains
 * why not. So this needs to be right only where it answers, and a property test holds
 * it to the full path (`plain-batch.spec.ts`). Decoding and parsing a 5,000-event body
 * into 15,000 objects, and collecting them, was most of the api's CPU per request.
 */
export function readPlainBatch(raw: Buffer, now = Date.now()): PlainBatch | null {
  if (!isAscii(raw) || raw.indexOf(BACKSLASH) !== -1) return null;
  try {
    return new PlainReader(raw, now + MAX_FUTURE_MS).batch();
  } catch (err) {
    if (err instanceof NotPlain) return null;
    throw err;
  }
}

class PlainReader {
  private i = 0;
  private nonNumeric = 0;
  /** Where the text of the string {@link string} (or the key {@link key}) read starts and ends. */
  private s = 0;
  private e = 0;
  /** The names of the `data` object being read, reused from one to the next. */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  constructor(
    private readonly b: Buffer,
    private readonly latestMs: number,
  ) {}

  batch(): PlainBatch {
    let deviceExternalId: string | undefined;
    let events = -1;
    this.ws();
    this.take(LBRACE);
    this.ws();
    if (this.b[this.i] !== RBRACE) {
      for (;;) {
        this.key();
        if (this.is(KEY_DEVICE) && deviceExternalId === undefined) {
          this.string();
          deviceExternalId = this.b.toString('latin1', this.s, this.e);
          if (!DEVICE_EXTERNAL_ID_RE.test(deviceExternalId)) throw NOT_PLAIN;
        } else if (this.is(KEY_EVENTS) && events === -1) {
          events = this.events();
        } else throw NOT_PLAIN;
        if (!this.next(RBRACE)) break;
      }
    }
    this.i++;
    this.ws();
    if (this.i !== this.b.length || deviceExternalId === undefined || events === -1)
      throw NOT_PLAIN;
    return { deviceExternalId, events, nonNumeric: this.nonNumeric };
  }

  private events(): number {
    this.take(LBRACKET);
    this.ws();
    let count = 0;
    if (this.b[this.i] === RBRACKET) throw NOT_PLAIN; // at least one event
    for (;;) {
      if (++count > MAX_EVENTS_PER_BATCH) throw NOT_PLAIN;
      this.event();
      if (!this.next(RBRACKET)) break;
    }
    this.i++;
    return count;
  }

  private event(): void {
    this.take(LBRACE);
    this.ws();
    let ts = false;
    let data = false;
    if (this.b[this.i] !== RBRACE) {
      for (;;) {
        this.key();
        if (this.is(KEY_TS) && !ts) {
          this.ts();
          ts = true;
        } else if (this.is(KEY_DATA) && !data) {
          this.data();
          data = true;
        } else throw NOT_PLAIN;
        if (!this.next(RBRACE)) break;
      }
    }
    this.i++;
    if (!ts || !data) throw NOT_PLAIN;
  }

  private ts(): void {
    this.string();
    if (!(timestampMsAt(this.b, this.s, this.e) <= this.latestMs)) throw NOT_PLAIN;
    // UTC, or an offset PostgreSQL reads as written (the full validation rewrites others).
    if (
      this.b[this.e - 1] !== UPPER_Z &&
      !pgAcceptsOffset(this.b.toString('latin1', this.s, this.e))
    )
      throw NOT_PLAIN;
  }

  /** A `data` object: its metrics' names and values. */
  private data(): void {
    this.take(LBRACE);
    this.ws();
    if (this.b[this.i] === RBRACE) {
      this.i++;
      return;
    }
    const { b, starts, ends } = this;
    let count = 0;
    let names: Set<string> | undefined;
    for (;;) {
      this.key();
      const start = this.s;
      const end = this.e;
      if (end === start || end - start > MAX_METRIC_NAME_LENGTH) throw NOT_PLAIN;
      if (count === MAX_METRICS_PER_EVENT) throw NOT_PLAIN;
      // A repeated name: JSON.parse keeps the last value, and counts it once.
      if (count < PAIRWISE_KEYS) {
        for (let k = 0; k < count; k++)
          if (sameRanges(b, starts[k], ends[k], start, end)) throw NOT_PLAIN;
      } else {
        if (!names) {
          names = new Set();
          for (let k = 0; k < count; k++) names.add(b.toString('latin1', starts[k], ends[k]));
        }
        const name = b.toString('latin1', start, end);
        if (names.has(name)) throw NOT_PLAIN;
        names.add(name);
      }
      starts[count] = start;
      ends[count] = end;
      count++;
      this.value();
      if (!this.next(RBRACE)) break;
    }
    this.i++;
  }

  /** A metric's value: a finite number, a short string, a boolean or null. */
  private value(): void {
    const c = this.b[this.i];
    if (c === QUOTE) {
      this.string();
      if (this.e - this.s > MAX_STRING_VALUE_LENGTH) throw NOT_PLAIN;
      this.nonNumeric++;
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      this.number();
    } else if (this.literal(TRUE) || this.literal(FALSE) || this.literal(NULL)) {
      this.nonNumeric++;
    } else throw NOT_PLAIN;
  }

  /** A JSON number literal whose value is a finite double. */
  private number(): void {
    const b = this.b;
    const start = this.i;
    if (b[this.i] === MINUS) this.i++;
    const intStart = this.i;
    if (b[this.i] === DIGIT_0) this.i++;
    else if (b[this.i] >= DIGIT_1 && b[this.i] <= DIGIT_9) this.digits();
    else throw NOT_PLAIN;
    let surelyFinite = this.i - intStart < SURELY_FINITE_DIGITS;
    if (b[this.i] === DOT) {
      this.i++;
      if (!this.digits()) throw NOT_PLAIN;
    }
    if (b[this.i] === LOWER_E || b[this.i] === UPPER_E) {
      this.i++;
      if (b[this.i] === PLUS || b[this.i] === MINUS) this.i++;
      if (!this.digits()) throw NOT_PLAIN;
      surelyFinite = false;
    }
    // JSON.parse reads 1e999 as Infinity, which the schema refuses.
    if (!surelyFinite && !Number.isFinite(Number(b.toString('latin1', start, this.i))))
      throw NOT_PLAIN;
  }

  /** Past a run of digits; whether there was one. */
  private digits(): boolean {
    const from = this.i;
    while (this.b[this.i] >= DIGIT_0 && this.b[this.i] <= DIGIT_9) this.i++;
    return this.i > from;
  }

  private literal(word: Buffer): boolean {
    if (!sameBytes(this.b, this.i, this.i + word.length, word)) return false;
    this.i += word.length;
    return true;
  }

  /** A key and its colon; its text at {@link s} to {@link e}. */
  private key(): void {
    this.string();
    this.ws();
    this.take(COLON);
    this.ws();
  }

  /**
   * A string without escapes (none is in the body) or control characters (JSON.parse
   * refuses them raw); its text at {@link s} to {@link e}.
   */
  private string(): void {
    const b = this.b;
    this.take(QUOTE);
    const start = this.i;
    let k = start;
    while (k < b.length && b[k] !== QUOTE) {
      if (b[k] < SPACE) throw NOT_PLAIN;
      k++;
    }
    if (k === b.length) throw NOT_PLAIN;
    this.s = start;
    this.e = k;
    this.i = k + 1;
  }

  /** After a member: true at a comma (and past it), false at `close` (left there). */
  private next(close: number): boolean {
    this.ws();
    const c = this.b[this.i];
    if (c === close) return false;
    if (c !== COMMA) throw NOT_PLAIN;
    this.i++;
    this.ws();
    return true;
  }

  private take(c: number): void {
    if (this.b[this.i] !== c) throw NOT_PLAIN;
    this.i++;
  }

  /** Whether the key just read is `word`. */
  private is(word: Buffer): boolean {
    return this.e - this.s === word.length && sameBytes(this.b, this.s, this.e, word);
  }

  /** JSON's whitespace: space, tab, line feed, carriage return. */
  private ws(): void {
    const b = this.b;
    for (;;) {
      const c = b[this.i];
      if (c !== SPACE && c !== TAB && c !== LF && c !== CR) return;
      this.i++;
    }
  }
}

/** Whether `b[start, end)` holds `word` (a loop: shorter than a call to Buffer.compare). */
function sameBytes(b: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start !== word.length || end > b.length) return false;
  for (let k = 0; k < word.length; k++) if (b[start + k] !== word[k]) return false;
  return true;
}

/** Whether `b[s1, e1)` and `b[s2, e2)` hold the same bytes. */
function sameRanges(b: Buffer, s1: number, e1: number, s2: number, e2: number): boolean {
  if (e1 - s1 !== e2 - s2) return false;
  for (let k = 0; k < e1 - s1; k++) if (b[s1 + k] !== b[s2 + k]) return false;
  return true;
}
