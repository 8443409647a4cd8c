import { EvaluationReading, StoredBatch, storedMs, storedMsAt } from './batch-readings';
import {
  BACKSLASH,
  COLON,
  COMMA,
  CR,
  DIGIT_0,
  DIGIT_9,
  LBRACE,
  LBRACKET,
  LF,
  LOWER_N as N,
  LOWER_R as R,
  LOWER_T as T,
  MINUS,
  numberAt,
  QUOTE,
  RBRACE,
  RBRACKET,
  SPACE,
  TAB,
} from './json-bytes';

/** A payload it cannot cut as it expects: the caller takes the INSERT instead. */
class Unexpected extends Error {}

/** What {@link cutBatch} makes of a batch. */
export interface CutBatch {
  /** The rows of `COPY telemetry (device_id, ts, data) FROM STDIN`, text format. */
  copy: Buffer;
  /** What that COPY stores when it succeeds: every event, read as {@link batchAsStored} reads them. */
  stored: StoredBatch;
  /**
   * Each event's ts, as stored (to the millisecond), is later than the one before it: no
   * two events of the batch are one reading.
   */
  ascending: boolean;
}

/**
 * The batch as the text of `COPY telemetry (device_id, ts, data) FROM STDIN`: one row per
 * event, `device_id \t ts \t data \n`, with each event's `ts` and `data` cut from the
 * payload as sent, not serialised again (which would change number literals: `1.50`,
 * `1e309`). PostgreSQL then reads each `data` once, where `jsonb_to_recordset` parses the
 * whole body into one jsonb and copies each event's `data` out of it: about twice the work
 * of a COPY of the same rows (`npm run bench:insert`). In the same pass, what the COPY
 * stores if it succeeds (it stores every event or fails): the count, the late ones and
 * the readings to evaluate, as {@link batchAsStored} reads them from `JSON.parse` (a
 * property test holds the two together), so the worker parses the body once.
 *
 * What it cuts is what `jsonb_to_recordset($payload::jsonb -> 'events')` reads:
 * - the last `events` key of the body, and in each event the last `ts` and `data` keys (as
 *   jsonb and JSON.parse both keep the last of duplicated keys);
 * - `ts` as the string's text (its escapes read, if it has any): PostgreSQL reads it with
 *   the same `timestamptz(3)` input either way;
 * - `data` as its JSON text, whitespace and escapes and all, with COPY's own escapes added
 *   for `\`, tab, newline and carriage return: jsonb reads the same value from it.
 * A key is compared as written, or read with `JSON.parse` when it has an escape
 * (`"\u0074s"` is `ts`). A metric is the number its literal spells (`Number` reads a JSON
 * number literal to the same double as JSON.parse), null for anything but a finite number.
 *
 * Null when the body is not what it expects, and the caller falls back to the INSERT: not
 * an object with an `events` array of objects that each have a string `ts` and an object
 * `data`, or a `ts` that {@link batchAsStored} leaves to PostgreSQL. The payload is JSON
 * the api has parsed already; this only finds where its parts are. It works on the UTF-8
 * bytes: every byte it looks for is ASCII, which never occurs inside a multi-byte
 * character.
 */
export function cutBatch(
  payload: string | Buffer,
  deviceId: string,
  evaluatedUntil: Date | null,
  metrics?: string[],
): CutBatch | null {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  try {
    return new Cutter(bytes, evaluatedUntil, metrics).cut(Buffer.from(`${deviceId}\t`, 'latin1'));
  } catch (err) {
    if (err instanceof Unexpected) return null;
    throw err;
  }
}

class Cutter {
  private i = 0;
  /** The key {@link nextKey} stopped at: where its text starts and ends. */
  private keyStart = 0;
  private keyEnd = 0;
  /** {@link open} was the last move: the next key is the object's first. */
  private first = false;
  /** No string of the body has an escape: keys and `ts` need no check. */
  private readonly plain: boolean;
  /** No `data` needs COPY's escapes. */
  private readonly copySafe: boolean;
  private out: Buffer = Buffer.alloc(0);
  private at = 0;
  private readonly cursor: number;
  /** The metrics' names as UTF-8, to compare with keys as written. */
  private readonly metricBytes: Buffer[];
  /** The metrics' values in the `data` last read. */
  private readonly values: Array<number | null>;

  constructor(
    private readonly b: Buffer,
    evaluatedUntil: Date | null,
    private readonly metrics?: string[],
  ) {
    this.plain = b.indexOf(BACKSLASH) === -1;
    this.copySafe =
      this.plain && b.indexOf(TAB) === -1 && b.indexOf(LF) === -1 && b.indexOf(CR) === -1;
    this.cursor = evaluatedUntil ? evaluatedUntil.getTime() : -Infinity;
    this.metricBytes = (metrics ?? []).map((m) => Buffer.from(m, 'utf8'));
    this.values = this.metricBytes.map(() => null);
  }

  cut(prefix: Buffer): CutBatch {
    let cut: CutBatch | undefined;
    this.open();
    while (this.nextKey()) {
      if (this.keyIs('events')) cut = this.events(prefix);
      else this.skipValue();
    }
    this.ws();
    if (this.i !== this.b.length || !cut) throw new Unexpected();
    return cut;
  }

  /** The `events` array, one COPY row per event, and what storing them all stores. */
  private events(prefix: Buffer): CutBatch {
    const b = this.b;
    const metrics = this.metrics;
    // Each row is the prefix, the ts, a tab, the data (twice its length at most, escaped)
    // and a newline: the body's length bounds the rest.
    this.out = Buffer.allocUnsafe(b.length * (this.copySafe ? 1 : 2) + 16);
    this.at = 0;
    let rows = 0;
    let late = 0;
    const readings: EvaluationReading[] | undefined = metrics ? [] : undefined;
    // Devices mostly send readings in ts order: then there is nothing to sort.
    let sorted = true;
    let previous = -Infinity;
    let ascending = true;
    let last = -Infinity;
    const done = (): CutBatch => {
      if (!sorted) readings?.sort((x, y) => x.ts - y.ts);
      return {
        copy: this.out.subarray(0, this.at),
        stored: { inserted: rows, late, readings },
        ascending,
      };
    };
    if (b[this.i] !== LBRACKET) throw new Unexpected();
    this.i++;
    this.ws();
    if (b[this.i] === RBRACKET) {
      this.i++;
      return done();
    }
    for (;;) {
      this.ws();
      let ts = -1;
      let tsEnd = -1;
      let data = -1;
      let dataEnd = -1;
      let isObject = false;
      this.open();
      while (this.nextKey()) {
        if (this.keyIs('ts')) {
          // Not a string: an earlier ts a later one replaces, or the end of the cut.
          if (b[this.i] !== QUOTE) {
            ts = -1;
            this.skipValue();
            continue;
          }
          ts = this.i + 1;
          this.skipString();
          tsEnd = this.i - 1;
        } else if (this.keyIs('data')) {
          data = this.i;
          isObject = b[this.i] === LBRACE;
          if (isObject) this.dataValues();
          else this.skipValue();
          dataEnd = this.i;
        } else this.skipValue();
      }
      if (ts === -1 || !isObject) throw new Unexpected();
      // A valid ts is ASCII: one written with escapes is written out decoded.
      const tsText = this.escapedAt(ts, tsEnd) ? this.decoded(ts, tsEnd) : null;
      const ms = tsText !== null ? storedMs(tsText) : storedMsAt(b, ts, tsEnd);
      if (Number.isNaN(ms)) throw new Unexpected();
      if (ms <= last) ascending = false;
      last = ms;
      if (ms <= this.cursor) late++;
      else if (readings && metrics) {
        const read: Record<string, number | null> = {};
        for (let k = 0; k < metrics.length; k++) read[metrics[k]] = this.values[k];
        if (ms < previous) sorted = false;
        previous = ms;
        readings.push({ ts: ms, data: read });
      }
      this.append(prefix, tsEnd - ts + dataEnd - data + 2);
      if (tsText !== null) this.at += this.out.write(tsText, this.at, 'latin1');
      else this.bytes(b, ts, tsEnd);
      this.out[this.at++] = TAB;
      if (this.copySafe) this.bytes(b, data, dataEnd);
      else this.escaped(data, dataEnd);
      this.out[this.at++] = LF;
      rows++;
      this.ws();
      const c = b[this.i++];
      if (c === RBRACKET) return done();
      if (c !== COMMA) throw new Unexpected();
    }
  }

  /**
   * Past the `data` object at the cursor, with the rules' metrics in it in {@link values}
   * (the last of a duplicated key): a finite JSON number's value (-0 as 0), else null.
   */
  private dataValues(): void {
    const values = this.values;
    if (values.length === 0) return this.skipValue();
    values.fill(null);
    this.open();
    while (this.nextKey()) {
      const k = this.metricIndex();
      if (k === -1) {
        this.skipValue();
        continue;
      }
      const c = this.b[this.i];
      const from = this.i;
      this.skipValue();
      if (c !== MINUS && (c < DIGIT_0 || c > DIGIT_9)) {
        values[k] = null;
        continue;
      }
      const n = numberAt(this.b, from, this.i);
      values[k] = Number.isFinite(n) ? n + 0 : null;
    }
  }

  /** Writes the prefix, with room for `more` bytes after it (twice that when escaping). */
  private append(prefix: Buffer, more: number): void {
    const need = this.at + prefix.length + more * 2;
    if (need > this.out.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.out.length * 2));
      this.out.copy(grown, 0, 0, this.at);
      this.out = grown;
    }
    this.bytes(prefix, 0, prefix.length);
  }

  /** A few dozen bytes at a time: a loop costs less than `Buffer.copy`'s checks. */
  private bytes(from: Buffer, start: number, end: number): void {
    const out = this.out;
    let at = this.at;
    for (let j = start; j < end; j++) out[at++] = from[j];
    this.at = at;
  }

  /** `data` with COPY's escapes: `\` doubled, tab, newline and CR as `\t`, `\n`, `\r`. */
  private escaped(start: number, end: number): void {
    const { b, out } = this;
    for (let j = start; j < end; j++) {
      const c = b[j];
      if (c === BACKSLASH || c === TAB || c === LF || c === CR) {
        out[this.at++] = BACKSLASH;
        out[this.at++] = c === BACKSLASH ? BACKSLASH : c === TAB ? T : c === LF ? N : R;
      } else out[this.at++] = c;
    }
  }

  /** At an object's `{`: moves inside it; {@link nextKey} then walks its keys. */
  private open(): void {
    this.ws();
    if (this.b[this.i] !== LBRACE) throw new Unexpected();
    this.i++;
    this.first = true;
  }

  /**
   * The next key of the object the cursor is in, its text at {@link keyStart} to
   * {@link keyEnd} and the cursor at its value (which the caller moves past); false at the
   * object's end, the cursor past its `}`.
   */
  private nextKey(): boolean {
    const b = this.b;
    this.ws();
    let c = b[this.i];
    if (c === RBRACE) {
      this.i++;
      this.first = false;
      return false;
    }
    if (!this.first) {
      if (c !== COMMA) throw new Unexpected();
      this.i++;
      this.ws();
      c = b[this.i];
    }
    this.first = false;
    if (c !== QUOTE) throw new Unexpected();
    this.keyStart = this.i + 1;
    this.skipString();
    this.keyEnd = this.i - 1;
    this.ws();
    if (b[this.i] !== COLON) throw new Unexpected();
    this.i++;
    this.ws();
    return true;
  }

  /** Which metric the key {@link nextKey} stopped at is, -1 for none. */
  private metricIndex(): number {
    const { keyStart: start, keyEnd: end } = this;
    if (this.escapedAt(start, end)) return this.metrics!.lastIndexOf(this.decoded(start, end));
    const names = this.metricBytes;
    for (let k = names.length - 1; k >= 0; k--) {
      const name = names[k];
      if (name.length !== end - start) continue;
      let j = 0;
      while (j < name.length && this.b[start + j] === name[j]) j++;
      if (j === name.length) return k;
    }
    return -1;
  }

  /** Whether the key {@link nextKey} stopped at is `name` (ASCII). */
  private keyIs(name: string): boolean {
    const { keyStart: start, keyEnd: end } = this;
    if (this.escapedAt(start, end)) return this.decoded(start, end) === name;
    if (end - start !== name.length) return false;
    for (let j = 0; j < name.length; j++)
      if (this.b[start + j] !== name.charCodeAt(j)) return false;
    return true;
  }

  /** Whether the string between `start` and `end` (its quotes outside) holds an escape. */
  private escapedAt(start: number, end: number): boolean {
    if (this.plain) return false;
    for (let j = start; j < end; j++) if (this.b[j] === BACKSLASH) return true;
    return false;
  }

  /** The string between `start` and `end` with its escapes read, as JSON.parse reads them. */
  private decoded(start: number, end: number): string {
    return JSON.parse(this.b.toString('utf8', start - 1, end + 1)) as string;
  }

  /** Past the string whose opening quote is at the cursor. */
  private skipString(): void {
    const b = this.b;
    let j = this.i + 1;
    for (;;) {
      const q = b.indexOf(QUOTE, j);
      if (q === -1) throw new Unexpected();
      if (!this.plain) {
        // Escaped when an odd number of backslashes runs up to it.
        let k = q - 1;
        while (b[k] === BACKSLASH) k--;
        if ((q - 1 - k) % 2 === 1) {
          j = q + 1;
          continue;
        }
      }
      this.i = q + 1;
      return;
    }
  }

  /** Past any JSON value at the cursor (the body is valid JSON: nesting is all it follows). */
  private skipValue(): void {
    const b = this.b;
    const c = b[this.i];
    if (c === QUOTE) return this.skipString();
    if (c === LBRACE || c === LBRACKET) {
      let depth = 0;
      for (;;) {
        const d = b[this.i];
        if (d === QUOTE) {
          this.skipString();
          continue;
        }
        if (d === LBRACE || d === LBRACKET) depth++;
        else if (d === RBRACE || d === RBRACKET) depth--;
        else if (d === undefined) throw new Unexpected();
        this.i++;
        if (depth === 0) return;
      }
    }
    // A number, true, false or null: up to the next delimiter.
    const start = this.i;
    for (;;) {
      const d = b[this.i];
      if (d === undefined || d === COMMA || d === RBRACE || d === RBRACKET || d <= SPACE) break;
      this.i++;
    }
    if (this.i === start) throw new Unexpected();
  }

  private ws(): void {
    const b = this.b;
    for (;;) {
      const c = b[this.i];
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return;
      this.i++;
    }
  }
}
