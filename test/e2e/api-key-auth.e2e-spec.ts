import { adminHeaders } from '@app/testing';
import { ApiKeyAuthService } from '@app/tenancy';
import bcrypt from 'bcryptjs';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { until } from '../support/fixtures';

describe('API key authentication (e2e)', () => {
  // Two apis boot in beforeAll: more than the default 5 s on a loaded CI machine.
  jest.setTimeout(30000);

  let api: RunningApi;
  let replica: RunningApi;
  let compare: jest.SpyInstance;

  beforeAll(async () => {
    api = await startApi();
    replica = await startApi();
  });
  afterAll(async () => {
    await Promise.all([api.close(), replica.close()]);
  });
  beforeEach(() => {
    compare = jest.spyOn(bcrypt, 'compare');
  });
  afterEach(() => compare.mockRestore());

  const devices = (server: RunningApi, projectId: string, key: string) =>
    request(server.server).get(`/projects/${projectId}/devices`).set('X-API-Key', key);

  it.each([
    ['empty', ''],
    ['garbage', 'hello'],
    ['no secret', 'tpk_abcdefghijkl'],
    ['10 KB', 'tpk_abcdefghijkl.' + 'a'.repeat(10 * 1024)],
    ['non-ASCII', 'tpk_abcdefghijkl.' + 'é'.repeat(43)],
  ])('refuses a %s key with 401 and no bcrypt work', async (_label, key) => {
    const p = await api.tenants.newProject();
    compare.mockClear();
    const res = await devices(api, p.projectId, key).expect(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    expect(compare).not.toHaveBeenCalled();
  });

  it('refuses a well-formed key with an unknown prefix without bcrypt', async () => {
    const p = await api.tenants.newProject();
    compare.mockClear();
    await devices(api, p.projectId, `tpk_zzzzzzzzzzzz.${'A'.repeat(43)}`).expect(401);
    expect(compare).not.toHaveBeenCalled();
  });

  it('refuses a missing header with 401 naming it', async () => {
    const p = await api.tenants.newProject();
    const res = await request(api.server).get(`/projects/${p.projectId}/devices`).expect(401);
    expect(res.body.message).toContain('X-API-Key');
  });

  it('pays bcrypt once per key, however many requests, even concurrent ones', async () => {
    const p = await api.tenants.newProject();
    compare.mockClear();
    await Promise.all(
      Array.from({ length: 10 }, () => devices(api, p.projectId, p.apiKey).expect(200)),
    );
    for (let i = 0; i < 20; i++) await devices(api, p.projectId, p.apiKey).expect(200);
    expect(compare).toHaveBeenCalledTimes(1);
  });

  it('remembers a wrong secret so retries cost no bcrypt', async () => {
    const p = await api.tenants.newProject();
    const wrong = `${p.apiKey.split('.')[0]}.${'B'.repeat(43)}`;
    compare.mockClear();
    for (let i = 0; i < 5; i++) await devices(api, p.projectId, wrong).expect(401);
    expect(compare).toHaveBeenCalledTimes(1);
  });

  it('refuses a revoked key at once on the revoking replica and within 5 s on another', async () => {
    const p = await api.tenants.newProject();
    await devices(api, p.projectId, p.apiKey).expect(200);
    await devices(replica, p.projectId, p.apiKey).expect(200); // cached on both replicas

    await request(api.server)
      .delete(`/projects/${p.projectId}/api-keys/${p.keyId}`)
      .set(adminHeaders)
      .expect(204);
    const revokedAt = Date.now();
    await devices(api, p.projectId, p.apiKey).expect(401);

    const status = await until(
      'the other replica to refuse the revoked key',
      async () => (await devices(replica, p.projectId, p.apiKey)).status,
      { done: (s) => s === 401, timeoutMs: 6000 - (Date.now() - revokedAt), everyMs: 100 },
    );
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(5000);

    // Revoking again is idempotent; the key list shows when.
    await request(api.server)
      .delete(`/projects/${p.projectId}/api-keys/${p.keyId}`)
      .set(adminHeaders)
      .expect(204);
    const keys = await request(api.server)
      .get(`/projects/${p.projectId}/api-keys`)
      .set(adminHeaders)
      .expect(200);
    expect(keys.body.items[0].revoked_at).toEqual(expect.any(String));
  });

  it('keeps last_used_at without a database write per request', async () => {
    const p = await api.tenants.newProject();
    for (let i = 0; i < 5; i++) await devices(api, p.projectId, p.apiKey).expect(200);
    const lastUsed = async () =>
      (
        await request(api.server)
          .get(`/projects/${p.projectId}/api-keys`)
          .set(adminHeaders)
          .expect(200)
      ).body.items[0].last_used_at as string | null;

    expect(await lastUsed()).toBeNull(); // buffered in memory, not written yet
    await api.app.get(ApiKeyAuthService).flushLastUsed();
    const first = await lastUsed();
    expect(first).toEqual(expect.any(String));
    expect(Date.now() - new Date(first!).getTime()).toBeLessThan(10000);
  });
});
