import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encryption at rest for webhook signing secrets, pure: no Nest, no I/O.
 *
 * A sealed value is `v1:<kid>:<base64url(iv | ciphertext | tag)>` under AES-256-GCM. The
 * key id travels with the value so keys can rotate: the ring's first key seals, every key
 * in the ring opens, and `sealedWithOtherKey` finds rows to re-encrypt. The caller's aad
 * (the webhook id) ties a value to its row, so a secret copied onto another webhook's row
 * does not decrypt there.
 */

/** A 32-byte AES-256 key and the id stored beside every value sealed with it. */
export interface SecretKey {
  id: string;
  key: Buffer;
}

/**
 * `current` seals; `all` (which includes `current`) opens. `derived` says `current` was
 * derived from the fallback seed because no keys were configured.
 */
export interface KeyRing {
  current: SecretKey;
  all: ReadonlyMap<string, SecretKey>;
  derived: boolean;
}

/** A WEBHOOK_SECRET_KEYS value that cannot be used; the message names the entry and fault. */
export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
}

/** A value that cannot be opened: malformed, unknown key id, or failed authentication. */
export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const PAYLOAD = /^[A-Za-z0-9_-]+$/;
const DERIVED_KID = 'derived';
const ENV = 'WEBHOOK_SECRET_KEYS';

// Changing either string changes the derived key and strands every value sealed with it;
// the spec pins the resulting key.
const HKDF_SALT = 'telemetry-platform/webhooks/secret-box/v1';
const HKDF_INFO = 'webhook signing secrets at rest: AES-256-GCM key';

/**
 * Reads WEBHOOK_SECRET_KEYS: `kid:base64key[,kid:base64key…]`. The first key seals, all
 * of them open. A kid is 1-32 of `[A-Za-z0-9_-]`; a key is standard or url-safe base64
 * (padding optional) of exactly 32 bytes.
 *
 * When `spec` is empty or undefined, the ring holds one key derived from `fallbackSeed`
 * (the ADMIN_TOKEN) with HKDF-SHA256, under kid `derived`, and `derived` is true. Such a
 * key changes with the seed, so rotating the ADMIN_TOKEN without configured keys makes
 * values sealed before unreadable. When `spec` is set and `fallbackSeed` is not empty, the
 * derived key is added as decrypt-only, so rows sealed before the operator configured keys
 * stay readable until they are re-encrypted.
 *
 * @throws KeyRingError naming the entry (by position) and what is wrong with it; messages
 * never quote a key, nor a kid that failed validation (it may be a misplaced key).
 */
export function parseKeyRing(spec: string | undefined, fallbackSeed: string): KeyRing {
  if (spec === undefined || spec.trim() === '') {
    if (fallbackSeed === '') {
      throw new KeyRingError(
        `${ENV} is not set and there is no seed (ADMIN_TOKEN) to derive a key from`,
      );
    }
    const current = deriveKey(fallbackSeed);
    return Object.freeze({ current, all: new Map([[current.id, current]]), derived: true });
  }

  const keys = spec.split(',').map((entry, i) => parseEntry(entry.trim(), i + 1));
  const all = new Map<string, SecretKey>();
  keys.forEach((k, i) => {
    if (all.has(k.id)) {
      throw new KeyRingError(`${ENV}: entry ${i + 1} repeats key id "${k.id}"`);
    }
    all.set(k.id, k);
  });
  if (fallbackSeed !== '') all.set(DERIVED_KID, deriveKey(fallbackSeed));
  return Object.freeze({ current: keys[0], all, derived: false });
}

function deriveKey(seed: string): SecretKey {
  const key = Buffer.from(hkdfSync('sha256', seed, HKDF_SALT, HKDF_INFO, KEY_BYTES));
  return { id: DERIVED_KID, key };
}

function parseEntry(entry: string, n: number): SecretKey {
  const where = `${ENV}: entry ${n}`;
  if (entry === '') throw new KeyRingError(`${where} is empty (stray comma?)`);
  const colon = entry.indexOf(':');
  if (colon < 0) throw new KeyRingError(`${where} has no ':' between key id and key`);
  const id = entry.slice(0, colon).trim();
  const encoded = entry.slice(colon + 1).trim();
  if (!KID.test(id)) {
    const bad = id.search(/[^A-Za-z0-9_-]/);
    const what =
      id === ''
        ? 'is empty'
        : bad >= 0
          ? `has a character other than A-Z a-z 0-9 _ - at position ${bad + 1}`
          : `is ${id.length} characters long`;
    throw new KeyRingError(
      `${where}: the key id ${what}; it must be 1-32 characters of A-Z a-z 0-9 _ -`,
    );
  }
  if (id === DERIVED_KID) {
    throw new KeyRingError(
      `${where}: key id "${DERIVED_KID}" is reserved for the key derived from ADMIN_TOKEN`,
    );
  }
  const fault = base64Fault(encoded);
  if (fault) throw new KeyRingError(`${where} (key id "${id}"): the key ${fault}`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new KeyRingError(
      `${where} (key id "${id}"): the key decodes to ${key.length} bytes, not ${KEY_BYTES}`,
    );
  }
  return { id, key };
}

/**
 * Why `s` is not strict base64, or null. Node's decoder skips characters it does not know,
 * so a typo would otherwise yield a different, shorter key rather than an error.
 */
function base64Fault(s: string): string | null {
  if (s === '') return 'is empty';
  const bad = s.search(/[^A-Za-z0-9+/_=-]/);
  if (bad >= 0) return `has a character outside base64 at position ${bad + 1}`;
  if (/[+/]/.test(s) && /[_-]/.test(s)) return 'mixes the standard and url-safe base64 alphabets';
  const body = s.replace(/=+$/, '');
  if (body.includes('=') || s.length - body.length > 2) return "has misplaced '=' padding";
  if (body.length % 4 === 1) return 'is truncated base64 (impossible length)';
  if (body !== s && s.length % 4 !== 0) return "has the wrong amount of '=' padding";
  const alphabet = /[_-]/.test(body) ? 'base64url' : 'base64';
  if (Buffer.from(body, alphabet).toString(alphabet).replace(/=+$/, '') !== body) {
    return 'is not canonical base64 (stray bits in the last character)';
  }
  return null;
}

/**
 * Encrypts `plaintext` under the ring's current key with a fresh random IV.
 *
 * The aad should identify the row that stores the value (the webhook id); `open` must be
 * given the same aad. The version and kid are authenticated as well, so a value cannot be
 * relabelled with another kid, even one that holds the same key.
 *
 * @throws SecretBoxError when the plaintext or aad holds a lone UTF-16 surrogate, which
 * UTF-8 cannot carry: it would come back from `open` as U+FFFD, a different string.
 */
export function seal(ring: KeyRing, plaintext: string, aad: string): string {
  assertWellFormed(plaintext, 'plaintext');
  assertWellFormed(aad, 'aad');
  const { id, key } = ring.current;
  if (!KID.test(id)) throw new SecretBoxError('the current key id is not a valid kid');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(id, aad));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const payload = Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  return `${VERSION}:${id}:${payload}`;
}

/**
 * Decrypts a value made by `seal` with any key of the ring and the same aad.
 *
 * @throws SecretBoxError saying whether the value is malformed, names an unknown key id,
 * or failed authentication (wrong key, wrong aad, or altered). The message never holds
 * the value, the plaintext or the aad.
 */
export function open(ring: KeyRing, sealed: string, aad: string): string {
  assertWellFormed(aad, 'aad');
  const parsed = parse(sealed);
  if (!parsed.ok) throw new SecretBoxError(`malformed sealed value: ${parsed.fault}`);
  const { kid, bytes } = parsed;
  const secretKey = ring.all.get(kid);
  if (!secretKey) {
    const known = [...ring.all.keys()].map((k) => `"${k}"`).join(', ');
    throw new SecretBoxError(`unknown key id "${kid}" (the key ring holds ${known})`);
  }
  const iv = bytes.subarray(0, IV_BYTES);
  const tag = bytes.subarray(bytes.length - TAG_BYTES);
  const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', secretKey.key, iv, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(associatedData(kid, aad));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretBoxError(
      `authentication failed under key id "${kid}": wrong key, wrong aad, or altered value`,
    );
  }
}

/**
 * Has `value` the shape of a sealed value (version, kid, canonical payload long enough for
 * iv and tag)? Says nothing of whether it opens. A plaintext `whsec_` secret is not sealed.
 */
export function isSealed(value: string): boolean {
  return parse(value).ok;
}

/**
 * Was `sealed` made under a key other than the ring's current one, so it should be
 * re-encrypted? Compares key ids only: a `derived` value sealed under another seed still
 * reads as current, and fails in `open`.
 *
 * @throws SecretBoxError when `sealed` is malformed.
 */
export function sealedWithOtherKey(ring: KeyRing, sealed: string): boolean {
  const parsed = parse(sealed);
  if (!parsed.ok) throw new SecretBoxError(`malformed sealed value: ${parsed.fault}`);
  return parsed.kid !== ring.current.id;
}

type Parsed = { ok: true; kid: string; bytes: Buffer } | { ok: false; fault: string };

function parse(sealed: string): Parsed {
  const parts = sealed.split(':');
  if (parts.length !== 3) return { ok: false, fault: 'expected v1:<kid>:<payload>' };
  const [version, kid, payload] = parts;
  if (version !== VERSION) return { ok: false, fault: 'unsupported version (expected v1)' };
  if (!KID.test(kid)) return { ok: false, fault: 'the key id is not 1-32 of [A-Za-z0-9_-]' };
  if (!PAYLOAD.test(payload)) return { ok: false, fault: 'the payload is not base64url' };
  const bytes = Buffer.from(payload, 'base64url');
  // Without this, editing the last character can leave the bytes unchanged (its low bits
  // are padding), and an altered string would still open.
  if (bytes.toString('base64url') !== payload) {
    return { ok: false, fault: 'the payload is not canonical base64url' };
  }
  if (bytes.length < IV_BYTES + TAG_BYTES) {
    return {
      ok: false,
      fault: `the payload is ${bytes.length} bytes, too short for iv and tag (${IV_BYTES + TAG_BYTES})`,
    };
  }
  return { ok: true, kid, bytes };
}

// A kid cannot contain ':', so the prefix cannot run into the caller's aad.
function associatedData(kid: string, aad: string): Buffer {
  return Buffer.from(`${VERSION}:${kid}:${aad}`, 'utf8');
}

function assertWellFormed(s: string, what: string): void {
  if (/\p{Cs}/u.test(s)) {
    throw new SecretBoxError(`the ${what} holds a lone UTF-16 surrogate, which UTF-8 cannot hold`);
  }
}
