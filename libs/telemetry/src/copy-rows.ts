const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;
const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const T = 116;
const N = 110;
const R = 114;

/** A payload it cannot cut as it expects: the caller takes the INSERT instead. */
class Unexpected extends Error {}

/**
 * The batch as the text of `COPY telemetry (device_id, ts, data) FROM STDIN`: one row per
 * event, `device_id \t ts \t data \n`, with each event's `ts` and `data` cut from the
 * payload as sent, not serialised again (which would change number literals: `1.50`,
 * `1e309`). PostgreSQL then reads each `data` once, where `jsonb_to_recordset` parses the
 * whole body into one jsonb and copies each event's `data` out of it: about twice the work
 * of a COPY of the same rows (`npm run bench:insert`).
 *
 * What it cuts is what `jsonb_to_recordset($payload::jsonb -> 'events')` reads:
 * - the last `events` key of the body, and in each event the last `ts` and `data` keys (as
 *   jsonb and JSON.parse both keep the last of duplicated keys);
 * - `ts` as the string's text: PostgreSQL reads it with the same `timestamptz(3)` input
 *   either way;
 * - `data` as its JSON text, whitespace and escapes and all, with COPY's own escapes added
 *   for `\`, tab, newline and carriage return: jsonb reads the same value from it.
 *
 * Null when the body is not what it expects: not an object with an `events` array of
 * objects that each have a string `ts` and a `data`, or a key of the body or of an event,
 * or a `ts`, written with a JSON escape (`"\u0074s"` is `ts`), which it does not decode.
 * The payload is JSON the api has parsed already; this only finds where its parts are.
 * It works on the UTF-8 bytes: every byte it looks for is ASCII, which never occurs inside
 * a multi-byte character.
 */
export function copyRows(payload: string, deviceId: string): { data: Buffer; rows: number } | null {
  try {
    return new Cutter(Buffer.from(payload, 'utf8')).rows(Buffer.from(`${deviceId}\t`, 'latin1'));
  } catch (err) {
    if (err instanceof Unexpected) return null;
    throw err;
  }
}

class Cutter {
  private i = 0;
  /** No string of the body has an escape: keys and `ts` need no check. */
  private readonly plain: boolean;
  /** No `data` needs COPY's escapes. */
  private readonly copySafe: boolean;
  private out: Buffer = Buffer.alloc(0);
  private at = 0;

  constructor(private readonly b: Buffer) {
    this.plain = b.indexOf(BACKSLASH) === -1;
    this.copySafe =
      this.plain && b.indexOf(TAB) === -1 && b.indexOf(LF) === -1 && b.indexOf(CR) === -1;
  }

  rows(prefix: Buffer): { data: Buffer; rows: number } {
    let cut: { data: Buffer; rows: number } | undefined;
    this.object((start, end) => {
      if (this.keyIs(start, end, 'events')) cut = this.events(prefix);
      else this.skipValue();
    });
    this.ws();
    if (this.i !== this.b.length || !cut) throw new Unexpected();
    return cut;
  }

  /** The `events` array, one COPY row per event. */
  private events(prefix: Buffer): { data: Buffer; rows: number } {
    const b = this.b;
    // Each row is the prefix, the ts, a tab, the data (twice its length at most, escaped)
    // and a newline: the body's length bounds the rest.
    this.out = Buffer.allocUnsafe(b.length * (this.copySafe ? 1 : 2) + 16);
    this.at = 0;
    let rows = 0;
    if (b[this.i] !== LBRACKET) throw new Unexpected();
    this.i++;
    this.ws();
    if (b[this.i] === RBRACKET) {
      this.i++;
      return { data: this.out.subarray(0, 0), rows };
    }
    for (;;) {
      this.ws();
      let ts = -1;
      let tsEnd = -1;
      let data = -1;
      let dataEnd = -1;
      this.object((start, end) => {
        if (this.keyIs(start, end, 'ts')) {
          // Not a string: an earlier ts a later one replaces, or the end of the cut.
          if (b[this.i] !== QUOTE) {
            ts = -1;
            this.skipValue();
            return;
          }
          ts = this.i + 1;
          this.skipString();
          tsEnd = this.i - 1;
          this.checkUnescaped(ts, tsEnd);
        } else if (this.keyIs(start, end, 'data')) {
          data = this.i;
          this.skipValue();
          dataEnd = this.i;
        } else this.skipValue();
      });
      if (ts === -1 || data === -1) throw new Unexpected();
      this.append(prefix, tsEnd - ts + dataEnd - data + 2);
      this.bytes(b, ts, tsEnd);
      this.out[this.at++] = TAB;
      if (this.copySafe) this.bytes(b, data, dataEnd);
      else this.escaped(data, dataEnd);
      this.out[this.at++] = LF;
      rows++;
      this.ws();
      const c = b[this.i++];
      if (c === RBRACKET) return { data: this.out.subarray(0, this.at), rows };
      if (c !== COMMA) throw new Unexpected();
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

  /**
   * An object at the cursor: `onKey` is called at each value, with where its key's text
   * starts and ends, and must move past the value.
   */
  private object(onKey: (keyStart: number, keyEnd: number) => void): void {
    const b = this.b;
    this.ws();
    if (b[this.i] !== LBRACE) throw new Unexpected();
    this.i++;
    this.ws();
    if (b[this.i] === RBRACE) {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (b[this.i] !== QUOTE) throw new Unexpected();
      const start = this.i + 1;
      this.skipString();
      const end = this.i - 1;
      this.ws();
      if (b[this.i] !== COLON) throw new Unexpected();
      this.i++;
      this.ws();
      onKey(start, end);
      this.ws();
      const c = b[this.i++];
      if (c === RBRACE) return;
      if (c !== COMMA) throw new Unexpected();
    }
  }

  /** Whether the key between `start` and `end` is `name` (ASCII); a key with an escape is refused. */
  private keyIs(start: number, end: number, name: string): boolean {
    this.checkUnescaped(start, end);
    if (end - start !== name.length) return false;
    for (let j = 0; j < name.length; j++)
      if (this.b[start + j] !== name.charCodeAt(j)) return false;
    return true;
  }

  /** The text between two quotes must hold no escape. */
  private checkUnescaped(start: number, end: number): void {
    if (this.plain) return;
    for (let j = start; j < end; j++) if (this.b[j] === BACKSLASH) throw new Unexpected();
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
