import { createHash } from 'node:crypto';
import * as fc from 'fast-check';
import {
  isSealed,
  KeyRing,
  KeyRingError,
  open,
  parseKeyRing,
  seal,
  SecretBoxError,
  sealedWithOtherKey,
} from './secret-box';
import { generateSecret } from './signature';

const FORMAT = /^v1:[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_-]+$/;
const SEED = 'test-admin-token-0123456789abcdef';

/** A fixed, realistic-looking 32-byte key per label. */
const keyOf = (label: string): Buffer => createHash('sha256').update(label).digest();
const b64 = (key: Buffer): string => key.toString('base64');
const KEY_A = keyOf('A');
const KEY_B = keyOf('B');
// 0xfb bytes encode to "+/v7…": both alphabets' special characters appear.
const KEY_SPECIAL = Buffer.alloc(32, 0xfb);

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

/** Does `message` hold any 8-character run of `secret`? */
function leaks(message: string, secret: string): boolean {
  for (let i = 0; i + 8 <= secret.length; i++) {
    if (message.includes(secret.slice(i, i + 8))) return true;
  }
  return false;
}

/** The sealed string with its payload's bytes passed through `edit`. */
function editPayload(sealed: string, edit: (bytes: Buffer) => Buffer): string {
  const [version, kid, payload] = sealed.split(':');
  return `${version}:${kid}:${edit(Buffer.from(payload, 'base64url')).toString('base64url')}`;
}

describe('parseKeyRing', () => {
  describe('without WEBHOOK_SECRET_KEYS', () => {
    it.each([undefined, '', '   '])('derives one key from the seed when the spec is %j', (spec) => {
      const ring = parseKeyRing(spec, SEED);
      expect(ring.derived).toBe(true);
      expect(ring.current.id).toBe('derived');
      expect(ring.current.key).toHaveLength(32);
      expect([...ring.all.keys()]).toEqual(['derived']);
      expect(ring.all.get('derived')).toBe(ring.current);
    });

    // Stored values depend on these exact bytes: a change to the HKDF salt or info would
    // make every row sealed with a derived key unreadable.
    it('derives the pinned HKDF-SHA256 key', () => {
      expect(parseKeyRing(undefined, SEED).current.key.toString('hex')).toBe(
        '357f669a7bb7931741fd4b9ee16e5809556958ecfed3c8b94c9ab72594c3fb0d',
      );
    });

    it('derives the same key from the same seed and another from another seed (property)', () => {
      fc.assert(
        fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (s1, s2) => {
          const k1 = parseKeyRing(undefined, s1).current.key;
          expect(parseKeyRing('', s1).current.key.equals(k1)).toBe(true);
          expect(parseKeyRing(undefined, s2).current.key.equals(k1)).toBe(s1 === s2);
        }),
        { numRuns: 200 },
      );
    });

    it('does not use the seed itself as the key', () => {
      const key = parseKeyRing(undefined, 'x'.repeat(32)).current.key;
      expect(key.equals(Buffer.from('x'.repeat(32)))).toBe(false);
    });

    it('refuses to run with neither keys nor a seed', () => {
      const err = thrown(() => parseKeyRing(undefined, ''));
      expect(err).toBeInstanceOf(KeyRingError);
      expect(err.message).toMatch(/WEBHOOK_SECRET_KEYS is not set and there is no seed/);
    });
  });

  describe('with WEBHOOK_SECRET_KEYS', () => {
    it('seals with the first key and opens with all of them', () => {
      const ring = parseKeyRing(`k2:${b64(KEY_B)},k1:${b64(KEY_A)}`, '');
      expect(ring.derived).toBe(false);
      expect(ring.current.id).toBe('k2');
      expect(ring.current.key.equals(KEY_B)).toBe(true);
      expect([...ring.all.keys()]).toEqual(['k2', 'k1']);
      expect(ring.all.get('k1')!.key.equals(KEY_A)).toBe(true);
      expect(ring.all.get('k2')).toBe(ring.current);
    });

    it('adds the seed-derived key as decrypt-only when a seed is given', () => {
      const ring = parseKeyRing(`k1:${b64(KEY_A)}`, SEED);
      expect(ring.derived).toBe(false);
      expect(ring.current.id).toBe('k1');
      expect([...ring.all.keys()]).toEqual(['k1', 'derived']);
      expect(ring.all.get('derived')!.key.equals(parseKeyRing(undefined, SEED).current.key)).toBe(
        true,
      );
    });

    it('adds no derived key without a seed', () => {
      expect([...parseKeyRing(`k1:${b64(KEY_A)}`, '').all.keys()]).toEqual(['k1']);
    });

    const std = KEY_SPECIAL.toString('base64');
    const url = KEY_SPECIAL.toString('base64url');
    it.each([
      ['standard, padded', std],
      ['standard, unpadded', std.replace(/=+$/, '')],
      ['url-safe, unpadded', url],
      ['url-safe, padded', `${url}=`],
    ])('reads a %s key', (_, encoded) => {
      expect(std).toMatch(/[+/]/);
      expect(url).toMatch(/[-_]/);
      const ring = parseKeyRing(`k1:${encoded}`, '');
      expect(ring.current.key.equals(KEY_SPECIAL)).toBe(true);
    });

    it('accepts kids of 1 and 32 characters from the whole alphabet, and spaces around parts', () => {
      const long = 'aZ09_-'.repeat(5) + 'xy';
      expect(long).toHaveLength(32);
      const ring = parseKeyRing(` a : ${b64(KEY_A)} , ${long}:${b64(KEY_B)} `, '');
      expect([...ring.all.keys()]).toEqual(['a', long]);
      expect(ring.all.get(long)!.key.equals(KEY_B)).toBe(true);
    });
  });

  describe('errors', () => {
    const A = b64(KEY_A);
    const stdSpecial = KEY_SPECIAL.toString('base64');
    it.each<[string, string, RegExp]>([
      ['an entry without a colon', A, /entry 1 has no ':' between key id and key/],
      ['an empty kid', `:${A}`, /entry 1: the key id is empty/],
      ['a kid with a space', `k 1:${A}`, /entry 1: the key id has a character other .* position 2/],
      [
        'a kid with a dot (second entry)',
        `k1:${A},k.2:${A}`,
        /entry 2: the key id has .*position 2/,
      ],
      [
        'a kid of 33 characters',
        `${'k'.repeat(33)}:${A}`,
        /entry 1: the key id is 33 characters long/,
      ],
      [
        'a duplicate kid',
        `k1:${A},k2:${b64(KEY_B)},k1:${b64(KEY_B)}`,
        /entry 3 repeats key id "k1"/,
      ],
      ['the reserved kid', `derived:${A}`, /entry 1: key id "derived" is reserved/],
      [
        'the reserved kid after others',
        `k1:${A},derived:${A}`,
        /entry 2: key id "derived" is reserved/,
      ],
      ['an empty entry', `k1:${A},`, /entry 2 is empty/],
      ['an empty key', 'k1:', /entry 1 \(key id "k1"\): the key is empty/],
      [
        'a character outside base64',
        `k1:${A.slice(0, 10)}!${A.slice(11)}`,
        /outside base64 at position 11/,
      ],
      [
        'a space inside the key',
        `k1:${A.slice(0, 20)} ${A.slice(20)}`,
        /outside base64 at position 21/,
      ],
      ['mixed alphabets', `k1:${stdSpecial.replace('+', '-')}`, /mixes the standard and url-safe/],
      ['padding inside the key', `k1:${A.slice(0, 8)}=${A.slice(9)}`, /misplaced '=' padding/],
      ['three padding characters', `k1:${A.slice(0, 41)}===`, /misplaced '=' padding/],
      ['the wrong amount of padding', `k1:${A.slice(0, 43)}==`, /wrong amount of '=' padding/],
      ['an impossible length', `k1:${'A'.repeat(45)}`, /impossible length/],
      ['stray bits in the last character', `k1:${'A'.repeat(42)}B`, /not canonical base64/],
      ['a 16-byte key', `k1:${b64(KEY_A.subarray(0, 16))}`, /decodes to 16 bytes, not 32/],
      [
        'a 33-byte key',
        `k1:${b64(Buffer.concat([KEY_A, KEY_B]).subarray(0, 33))}`,
        /33 bytes, not 32/,
      ],
      ['a 64-byte key', `k1:${b64(Buffer.concat([KEY_A, KEY_B]))}`, /64 bytes, not 32/],
      ['the key and kid swapped', `${A}:k1`, /entry 1: the key id has a character other/],
    ])('rejects %s', (_, spec, message) => {
      const err = thrown(() => parseKeyRing(spec, SEED));
      expect(err).toBeInstanceOf(KeyRingError);
      expect(err.message).toMatch(/^WEBHOOK_SECRET_KEYS: /);
      expect(err.message).toMatch(message);
      expect(leaks(err.message, A)).toBe(false);
      expect(leaks(err.message, stdSpecial)).toBe(false);
      expect(leaks(err.message, SEED)).toBe(false);
    });

    const mistakes: [string, (k: string, url: string) => string][] = [
      ['no colon', (k) => k],
      ['swapped', (k) => `${k}:k1`],
      ['swapped, url-safe', (_, u) => `${u}:k1`],
      ['bad character', (k) => `k1:${k}!`],
      ['truncated', (k) => `k1:${k.slice(0, 40)}`],
      ['doubled', (k) => `k1:${k}${k}`],
      ['mixed alphabets', (k, u) => `k1:${k}${u}`],
      ['duplicate kid', (k) => `k1:${k},k1:${k}`],
      ['reserved kid', (k) => `derived:${k}`],
      ['trailing comma', (k) => `k1:${k},`],
      ['second entry bad', (k, u) => `k1:${k},k2:${u.slice(1)}`],
    ];
    it('never puts key material in a message (property)', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.constantFrom(...mistakes),
          (bytes, [, mistake]) => {
            const key = Buffer.from(bytes);
            const [std, url] = [key.toString('base64'), key.toString('base64url')];
            const err = thrown(() => parseKeyRing(mistake(std, url), SEED));
            expect(err).toBeInstanceOf(KeyRingError);
            expect(leaks(err.message, std)).toBe(false);
            expect(leaks(err.message, url)).toBe(false);
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});

describe('seal and open', () => {
  const ringA = parseKeyRing(`k1:${b64(KEY_A)}`, '');

  it('writes v1:<kid>:<base64url payload> under the current key', () => {
    const sealed = seal(ringA, generateSecret(), 'wh_1');
    expect(sealed).toMatch(FORMAT);
    expect(sealed.startsWith('v1:k1:')).toBe(true);
    // 12-byte iv + 50 bytes of "whsec_" + base64 + 16-byte tag.
    expect(Buffer.from(sealed.split(':')[2], 'base64url')).toHaveLength(78);
  });

  it('round-trips any Unicode plaintext under any aad (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary' }),
        (plaintext, aad) => {
          const sealed = seal(ringA, plaintext, aad);
          expect(sealed).toMatch(FORMAT);
          expect(isSealed(sealed)).toBe(true);
          expect(open(ringA, sealed, aad)).toBe(plaintext);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips real webhook secrets, astral characters and the empty string', () => {
    for (const plaintext of [generateSecret(), '', '😀 café ✓ 𝄞', '\u0000nul']) {
      expect(open(ringA, seal(ringA, plaintext, 'wh'), 'wh')).toBe(plaintext);
    }
    expect(Buffer.from(seal(ringA, '', 'wh').split(':')[2], 'base64url')).toHaveLength(28);
  });

  it('seals the same plaintext differently every time (fresh IV)', () => {
    const secret = generateSecret();
    const sealed = Array.from({ length: 200 }, () => seal(ringA, secret, 'wh_1'));
    expect(new Set(sealed).size).toBe(200);
    const ivs = sealed.map((s) => Buffer.from(s.split(':')[2], 'base64url').subarray(0, 12));
    expect(new Set(ivs.map((iv) => iv.toString('hex'))).size).toBe(200);
    for (const s of sealed) expect(open(ringA, s, 'wh_1')).toBe(secret);
  });

  it('fails authentication under another aad (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary' }),
        fc.string({ unit: 'binary' }),
        (plaintext, aad, other) => {
          fc.pre(aad !== other);
          const sealed = seal(ringA, plaintext, aad);
          const err = thrown(() => open(ringA, sealed, other));
          expect(err).toBeInstanceOf(SecretBoxError);
          expect(err.message).toMatch(/authentication failed under key id "k1"/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('does not let a value be moved to another webhook row', () => {
    const sealed = seal(ringA, generateSecret(), '5f0c2f7e-1111-4000-8000-000000000001');
    expect(() => open(ringA, sealed, '5f0c2f7e-1111-4000-8000-000000000002')).toThrow(
      /authentication failed/,
    );
  });

  it('fails authentication on any single flipped bit of the payload (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.nat(), (plaintext, n) => {
        const sealed = seal(ringA, plaintext, 'wh_1');
        const tampered = editPayload(sealed, (bytes) => {
          const bit = n % (bytes.length * 8);
          bytes[bit >> 3] ^= 1 << (bit & 7);
          return bytes;
        });
        expect(tampered).not.toBe(sealed);
        const err = thrown(() => open(ringA, tampered, 'wh_1'));
        expect(err).toBeInstanceOf(SecretBoxError);
        expect(err.message).toMatch(/authentication failed/);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects any single changed character anywhere in the sealed string (property)', () => {
    // Both kids hold the same key, so a changed kid must be caught by the aad, not the key.
    const ring = parseKeyRing(`k1:${b64(KEY_A)},k2:${b64(KEY_A)},k3:${b64(KEY_B)}`, SEED);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:=+/ .é';
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.nat(),
        fc.constantFrom(...alphabet),
        (plaintext, n, replacement) => {
          const sealed = seal(ring, plaintext, 'wh_1');
          const i = n % sealed.length;
          fc.pre(sealed[i] !== replacement);
          const tampered = sealed.slice(0, i) + replacement + sealed.slice(i + 1);
          expect(() => open(ring, tampered, 'wh_1')).toThrow(SecretBoxError);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('catches a changed last character that decodes to the same bytes', () => {
    // 28 bytes take 38 characters; the last one carries 4 bits of padding.
    const sealed = seal(ringA, '', 'wh');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet[alphabet.indexOf(sealed.at(-1)!) ^ 1];
    const tampered = sealed.slice(0, -1) + last;
    expect(Buffer.from(tampered.split(':')[2], 'base64url')).toEqual(
      Buffer.from(sealed.split(':')[2], 'base64url'),
    );
    expect(() => open(ringA, tampered, 'wh')).toThrow(/malformed .*not canonical base64url/);
    expect(isSealed(tampered)).toBe(false);
  });

  it('binds the kid: relabelling with a kid that holds the same key fails', () => {
    const ring = parseKeyRing(`new:${b64(KEY_A)},old:${b64(KEY_A)}`, '');
    const sealed = seal(ring, 'secret', 'wh');
    expect(open(ring, sealed, 'wh')).toBe('secret');
    expect(() => open(ring, sealed.replace('v1:new:', 'v1:old:'), 'wh')).toThrow(
      /authentication failed under key id "old"/,
    );
  });

  it('names an unknown kid and the kids the ring holds', () => {
    const sealed = seal(parseKeyRing(`old:${b64(KEY_A)}`, ''), 'secret', 'wh');
    const err = thrown(() => open(parseKeyRing(`k2:${b64(KEY_B)}`, SEED), sealed, 'wh'));
    expect(err).toBeInstanceOf(SecretBoxError);
    expect(err.message).toBe('unknown key id "old" (the key ring holds "k2", "derived")');
  });

  it('opens values sealed with an older key of the ring, and seals with the first', () => {
    const before = parseKeyRing(`k1:${b64(KEY_A)}`, '');
    const after = parseKeyRing(`k2:${b64(KEY_B)},k1:${b64(KEY_A)}`, '');
    const old = seal(before, 'secret', 'wh');
    expect(open(after, old, 'wh')).toBe('secret');
    const fresh = seal(after, 'secret', 'wh');
    expect(fresh.startsWith('v1:k2:')).toBe(true);
    expect(() => open(before, fresh, 'wh')).toThrow(/unknown key id "k2"/);
  });

  it('fails authentication when a kid is reused for a different key', () => {
    const sealed = seal(parseKeyRing(`k1:${b64(KEY_A)}`, ''), 'secret', 'wh');
    expect(() => open(parseKeyRing(`k1:${b64(KEY_B)}`, ''), sealed, 'wh')).toThrow(
      /authentication failed under key id "k1"/,
    );
  });

  it('keeps rows sealed with the derived key readable after keys are configured', () => {
    const derived = parseKeyRing(undefined, SEED);
    const sealed = seal(derived, 'secret', 'wh');
    expect(sealed.startsWith('v1:derived:')).toBe(true);
    const configured = parseKeyRing(`k1:${b64(KEY_A)}`, SEED);
    expect(open(configured, sealed, 'wh')).toBe('secret');
    expect(sealedWithOtherKey(configured, sealed)).toBe(true);
    expect(() => open(parseKeyRing(`k1:${b64(KEY_A)}`, ''), sealed, 'wh')).toThrow(
      /unknown key id "derived"/,
    );
  });

  it('cannot open derived-key rows once the seed changes', () => {
    const sealed = seal(parseKeyRing(undefined, SEED), 'secret', 'wh');
    const rotated = parseKeyRing(undefined, `${SEED}-rotated`);
    expect(sealedWithOtherKey(rotated, sealed)).toBe(false);
    expect(() => open(rotated, sealed, 'wh')).toThrow(/authentication failed/);
  });

  it('puts no plaintext, aad or payload in its messages', () => {
    const plaintext = generateSecret();
    const aad = 'aad-8d4c1f2b9e7a';
    const sealed = seal(ringA, plaintext, aad);
    const payload = sealed.split(':')[2];
    const messages = [
      thrown(() => open(ringA, sealed, 'other-aad')).message,
      thrown(() => open(parseKeyRing(`k9:${b64(KEY_B)}`, ''), sealed, aad)).message,
      thrown(() => open(parseKeyRing(`k1:${b64(KEY_B)}`, ''), sealed, aad)).message,
      thrown(() => open(ringA, `${sealed}=`, aad)).message,
      thrown(() => open(ringA, plaintext, aad)).message,
      thrown(() => sealedWithOtherKey(ringA, plaintext)).message,
    ];
    for (const m of messages) {
      expect(leaks(m, plaintext)).toBe(false);
      expect(leaks(m, aad)).toBe(false);
      expect(leaks(m, payload)).toBe(false);
      expect(leaks(m, b64(KEY_A))).toBe(false);
    }
  });

  it('refuses lone surrogates, which would not survive UTF-8', () => {
    expect(() => seal(ringA, 'a\uD800b', 'wh')).toThrow(/plaintext holds a lone UTF-16 surrogate/);
    expect(() => seal(ringA, 'secret', '\uDC00')).toThrow(/aad holds a lone UTF-16 surrogate/);
    const sealed = seal(ringA, 'secret', '\uFFFD');
    expect(() => open(ringA, sealed, '\uD800')).toThrow(SecretBoxError);
  });

  it('refuses to seal under a kid that could not be read back', () => {
    const ring: KeyRing = {
      current: { id: 'bad:kid', key: KEY_A },
      all: new Map(),
      derived: false,
    };
    expect(() => seal(ring, 'secret', 'wh')).toThrow(/current key id is not a valid kid/);
  });

  describe('malformed values', () => {
    const valid = seal(ringA, 'secret', 'wh');
    const payload = valid.split(':')[2];
    it.each<[string, string, RegExp]>([
      ['the empty string', '', /expected v1:<kid>:<payload>/],
      [
        'a plaintext secret',
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        /expected v1:<kid>:<payload>/,
      ],
      ['four parts', `${valid}:x`, /expected v1:<kid>:<payload>/],
      ['another version', `v2:k1:${payload}`, /unsupported version/],
      ['an upper-case version', `V1:k1:${payload}`, /unsupported version/],
      ['an empty kid', `v1::${payload}`, /key id is not 1-32/],
      ['a 33-character kid', `v1:${'k'.repeat(33)}:${payload}`, /key id is not 1-32/],
      ['an empty payload', 'v1:k1:', /payload is not base64url/],
      ['a padded payload', `${valid}=`, /payload is not base64url/],
      [
        'standard base64',
        `v1:k1:${payload.replace(/-/g, '+').replace(/_/g, '/')}+`,
        /not base64url/,
      ],
      [
        'a 27-byte payload',
        `v1:k1:${Buffer.alloc(27).toString('base64url')}`,
        /27 bytes, too short/,
      ],
      ['a 1-byte payload', 'v1:k1:AA', /1 bytes, too short for iv and tag \(28\)/],
    ])('rejects %s', (_, sealed, message) => {
      const err = thrown(() => open(ringA, sealed, 'wh'));
      expect(err).toBeInstanceOf(SecretBoxError);
      expect(err.message).toMatch(/^malformed sealed value: /);
      expect(err.message).toMatch(message);
      expect(isSealed(sealed)).toBe(false);
      expect(() => sealedWithOtherKey(ringA, sealed)).toThrow(SecretBoxError);
    });

    it('accepts the 28-byte minimum as a shape and fails its authentication', () => {
      const sealed = `v1:k1:${Buffer.alloc(28).toString('base64url')}`;
      expect(isSealed(sealed)).toBe(true);
      expect(() => open(ringA, sealed, 'wh')).toThrow(/authentication failed/);
    });
  });
});

describe('isSealed', () => {
  it('is false for plaintext whsec_ secrets (500 generated ones and the example from the spec)', () => {
    for (let i = 0; i < 500; i++) expect(isSealed(generateSecret())).toBe(false);
    expect(isSealed('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(false);
  });

  it('is true for sealed values, whatever the key', () => {
    const ring = parseKeyRing(undefined, SEED);
    expect(isSealed(seal(ring, generateSecret(), 'wh'))).toBe(true);
  });
});

describe('sealedWithOtherKey', () => {
  const before = parseKeyRing(`k1:${b64(KEY_A)}`, '');
  const after = parseKeyRing(`k2:${b64(KEY_B)},k1:${b64(KEY_A)}`, '');

  it('is false for values sealed with the current key', () => {
    expect(sealedWithOtherKey(before, seal(before, 's', 'wh'))).toBe(false);
    expect(sealedWithOtherKey(after, seal(after, 's', 'wh'))).toBe(false);
  });

  it('is true for values sealed with an older key, including an unknown one', () => {
    expect(sealedWithOtherKey(after, seal(before, 's', 'wh'))).toBe(true);
    expect(sealedWithOtherKey(before, seal(after, 's', 'wh'))).toBe(true);
  });

  it('re-encrypting moves a value to the current key', () => {
    const old = seal(before, 's', 'wh');
    const renewed = seal(after, open(after, old, 'wh'), 'wh');
    expect(sealedWithOtherKey(after, renewed)).toBe(false);
    expect(open(after, renewed, 'wh')).toBe('s');
  });

  it('throws on a value that is not sealed', () => {
    expect(() => sealedWithOtherKey(after, generateSecret())).toThrow(/malformed sealed value/);
  });
});
