import { asProjectId } from '@app/common';
import { ApiKeyCache } from './api-key-cache';

const principal = (keyId: string) => ({
  keyId,
  projectId: asProjectId('p'),
  scopes: ['read' as const],
});

describe('ApiKeyCache', () => {
  it('returns entries younger than the ttl and forgets older ones', () => {
    const cache = new ApiKeyCache(10, 1000);
    cache.set('a', principal('k1'), 'h', 0);
    expect(cache.get('a', 999)?.principal.keyId).toBe('k1');
    expect(cache.get('a', 1000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('evicts the least recently used entry past its bound', () => {
    const cache = new ApiKeyCache(2, 1000);
    cache.set('a', principal('k1'), 'h', 0);
    cache.set('b', principal('k2'), 'h', 0);
    cache.get('a', 1); // a is now the most recent
    cache.set('c', principal('k3'), 'h', 2);
    expect(cache.get('b', 3)).toBeUndefined();
    expect(cache.get('a', 3)).toBeDefined();
    expect(cache.get('c', 3)).toBeDefined();
    expect(cache.size).toBe(2);
  });

  it('drops every fingerprint of a revoked key', () => {
    const cache = new ApiKeyCache(10, 1000);
    cache.set('a', principal('k1'), 'h', 0);
    cache.set('b', principal('k1'), 'h', 0);
    cache.set('c', principal('k2'), 'h', 0);
    expect(cache.deleteKey('k1')).toBe(2);
    expect(cache.get('a', 1)).toBeUndefined();
    expect(cache.get('c', 1)).toBeDefined();
  });

  it('caches nothing when disabled', () => {
    const cache = new ApiKeyCache(0, 1000);
    cache.set('a', principal('k1'), 'h', 0);
    expect(cache.get('a', 0)).toBeUndefined();
  });
});
