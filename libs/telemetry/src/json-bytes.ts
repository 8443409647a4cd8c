/**
 * The ASCII bytes of JSON's grammar, for the code that reads a body's UTF-8 bytes without
 * decoding them: the worker's cut ({@link cutBatch}) and the api's plain read
 * ({@link readPlainBatch}). None occurs inside a multi-byte character.
 */
export const TAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SPACE = 0x20;
export const QUOTE = 0x22;
export const PLUS = 0x2b;
export const COMMA = 0x2c;
export const MINUS = 0x2d;
export const DOT = 0x2e;
export const DIGIT_0 = 0x30;
export const DIGIT_1 = 0x31;
export const DIGIT_9 = 0x39;
export const COLON = 0x3a;
export const UPPER_E = 0x45;
export const UPPER_Z = 0x5a;
export const LBRACKET = 0x5b;
export const BACKSLASH = 0x5c;
export const RBRACKET = 0x5d;
export const LOWER_E = 0x65;
export const LOWER_N = 0x6e;
export const LOWER_R = 0x72;
export const LOWER_T = 0x74;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;

/** Powers of ten a double holds exactly. */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** Up to this many digits, a literal's digits as an integer are a double exactly. */
const EXACT_DIGITS = 15;

/**
 * The double the JSON number literal between two offsets spells, as `Number` (and
 * JSON.parse) read it, without making a string of it: once per metric a rule reads, per
 * event. A literal of at most 15 digits and no exponent is its digits, an exact double,
 * divided by a power of ten, also exact: IEEE division rounds that quotient to the
 * nearest double, which is what `Number` returns for the decimal (a property test holds
 * the two together). Any other literal is read by `Number`.
 */
export function numberAt(b: Buffer, start: number, end: number): number {
  let i = start;
  const negative = b[i] === MINUS;
  if (negative) i++;
  let digits = 0;
  let scale = 0;
  let fraction = false;
  let m = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c >= DIGIT_0 && c <= DIGIT_9) {
      m = m * 10 + (c - DIGIT_0);
      digits++;
      if (fraction) scale++;
    } else if (c === DOT && !fraction) fraction = true;
    else return Number(b.toString('latin1', start, end));
  }
  if (digits === 0 || digits > EXACT_DIGITS) return Number(b.toString('latin1', start, end));
  const v = scale === 0 ? m : m / EXACT_POWERS_OF_TEN[scale];
  return negative ? -v : v;
}
