import { AppConfig } from '@app/config';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcryptjs';
import { ApiKeyAuthService } from './api-key-auth.service';
import { generateApiKey } from './api-key.format';
import { ApiKeysRepository } from './repositories';

describe('ApiKeyAuthService.cachedPrincipal', () => {
  const { prefix, secret, key } = generateApiKey();
  const row = {
    id: 'key-1',
    projectId: 'project-1',
    scopes: ['read'],
    secretHash: bcrypt.hashSync(secret, 4),
    revokedAt: null,
  };
  let keys: { findCredentialByPrefix: jest.Mock; touchMany: jest.Mock; revokedSince: jest.Mock };
  let service: ApiKeyAuthService;
  let compare: jest.SpyInstance;

  beforeEach(() => {
    keys = {
      findCredentialByPrefix: jest.fn(async (p: string) => (p === prefix ? row : null)),
      touchMany: jest.fn(async () => undefined),
      revokedSince: jest.fn(async () => ({ ids: [], polledAt: new Date() })),
    };
    const config = {
      get: () => ({ keyCacheMaxEntries: 100, keyCacheTtlMs: 60000, lastUsedFlushMs: 60000 }),
    };
    service = new ApiKeyAuthService(
      keys as unknown as ApiKeysRepository,
      config as unknown as ConfigService<AppConfig, true>,
    );
    compare = jest.spyOn(bcrypt, 'compare');
  });
  afterEach(async () => {
    compare.mockRestore();
    await service.beforeApplicationShutdown();
  });

  it('knows a key only once verify() has verified it, and never reads or hashes itself', async () => {
    expect(service.cachedPrincipal(key)).toBeNull();
    expect(keys.findCredentialByPrefix).not.toHaveBeenCalled();

    await expect(service.verify(key)).resolves.toMatchObject({ keyId: 'key-1' });
    keys.findCredentialByPrefix.mockClear();
    compare.mockClear();

    expect(service.cachedPrincipal(key)).toEqual({
      keyId: 'key-1',
      projectId: 'project-1',
      scopes: ['read'],
    });
    expect(keys.findCredentialByPrefix).not.toHaveBeenCalled();
    expect(compare).not.toHaveBeenCalled();
  });

  it('answers null for a refused, malformed or absent key', async () => {
    const wrong = `${prefix}.${'B'.repeat(43)}`;
    await expect(service.verify(wrong)).resolves.toBeNull();
    keys.findCredentialByPrefix.mockClear();
    for (const presented of [wrong, 'garbage', undefined, ['a', 'b']]) {
      expect(service.cachedPrincipal(presented)).toBeNull();
    }
    expect(keys.findCredentialByPrefix).not.toHaveBeenCalled();
  });

  it('forgets a revoked key', async () => {
    await service.verify(key);
    service.forget('key-1');
    expect(service.cachedPrincipal(key)).toBeNull();
  });
});
