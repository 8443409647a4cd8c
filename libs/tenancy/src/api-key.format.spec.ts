import { generateApiKey, isApiKeyPrefix, keyFingerprint, parseApiKey } from './api-key.format';

describe('api key format', () => {
  it('generates keys that parse back into prefix and secret', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const k = generateApiKey();
      expect(parseApiKey(k.key)).toEqual({ prefix: k.prefix, secret: k.secret });
      expect(isApiKeyPrefix(k.prefix)).toBe(true);
      seen.add(k.prefix);
    }
    expect(seen.size).toBe(200);
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['no dot', 'tpk_abcdefghijkl'],
    ['wrong prefix', 'key_abcdefghijkl.' + 'a'.repeat(43)],
    ['short secret', 'tpk_abcdefghijkl.' + 'a'.repeat(42)],
    ['bad characters', 'tpk_abcdefghijkl.' + '!'.repeat(43)],
    ['10 KB', 'tpk_abcdefghijkl.' + 'a'.repeat(10_000)],
    ['array', ['tpk_abcdefghijkl.' + 'a'.repeat(43)]],
  ])('refuses %s', (_name, value) => {
    expect(parseApiKey(value)).toBeNull();
  });

  it('fingerprints deterministically without containing the key', () => {
    const { key } = generateApiKey();
    expect(keyFingerprint(key)).toBe(keyFingerprint(key));
    expect(keyFingerprint(key)).not.toContain(key.split('.')[1]);
  });
});
