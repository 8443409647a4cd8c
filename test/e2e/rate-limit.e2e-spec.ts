import { ApiKeyAuthService } from '@app/tenancy';
import { adminHeaders, testRunEnv } from '@app/testing';
import bcrypt from 'bcryptjs';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { TcpProxy } from '../support/tcp-proxy';

const limits = {
  RATE_LIMIT_API_PER_MINUTE: '3',
  RATE_LIMIT_INGEST_PER_MINUTE: '2',
  RATE_LIMIT_ANON_PER_MINUTE: '2',
};

describe('rate limits (e2e)', () => {
  let setup: RunningApi;
  let a: RunningApi;
  let b: RunningApi;

  beforeAll(async () => {
    // A namespace of its own, so other tests' traffic doesn't count here.
    const prefix = `${testRunEnv().redisPrefix}:rl`;
    setup = await startApi({ REDIS_PREFIX: prefix });
    a = await startApi({ ...limits, REDIS_PREFIX: prefix });
    b = await startApi({ ...limits, REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await Promise.all([setup.close(), a.close(), b.close()]);
  });

  // A key counts in its own buckets once the replica has verified it (its first request
  // is counted in its IP's bucket while it is verified, then given back: see the next
  // describe). Verified here directly, so the key buckets' counts are exact.
  const verifiedOnBoth = async (key: string) => {
    for (const api of [a, b]) await api.app.get(ApiKeyAuthService).verify(key);
  };

  it('limits each API key across replicas, with ingest in its own bucket', async () => {
    const p = await setup.tenants.newProject();
    await verifiedOnBoth(p.apiKey);
    const list = (api: RunningApi) =>
      request(api.server).get(`/projects/${p.projectId}/devices`).set(p.headers);

    const first = await list(a).expect(200);
    expect(first.headers['ratelimit-limit']).toBe('3');
    expect(first.headers['ratelimit-remaining']).toBe('2');
    expect(Number(first.headers['ratelimit-reset'])).toBeGreaterThan(0);
    await list(b).expect(200); // the other replica counts in the same bucket
    await list(a).expect(200);
    const limited = await list(b).expect(429);
    expect(limited.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['ratelimit-remaining']).toBe('0');

    // Ingest has its own bucket: still open after the read bucket filled up.
    const batch = {
      device_external_id: 'd',
      events: [{ ts: '2025-01-01T00:00:00Z', data: { v: 1 } }],
    };
    await request(a.server).post('/telemetry').set(p.headers).send(batch).expect(202);
    await request(b.server).post('/telemetry').set(p.headers).send(batch).expect(202);
    await request(a.server).post('/telemetry').set(p.headers).send(batch).expect(429);

    // Another key of the same project has buckets of its own.
    const other = await setup.tenants.newKey(p.projectId);
    await verifiedOnBoth(other.key);
    await request(a.server)
      .get(`/projects/${p.projectId}/devices`)
      .set('X-API-Key', other.key)
      .expect(200);
  });

  it('puts callers without a valid credential in one bucket per client IP', async () => {
    const random = () =>
      `tpk_${'a'.repeat(12)}.${Math.random().toString(36).padEnd(43, 'x').slice(0, 43)}`;
    await request(a.server)
      .get('/devices/00000000-0000-4000-8000-000000000000')
      .set('X-API-Key', random())
      .expect(401);
    await request(b.server).get('/orgs').expect(401);
    const res = await request(a.server).get('/orgs').set('X-API-Key', random()).expect(429);
    expect(res.headers['retry-after']).toBeDefined();
  });

  it('never limits health, metrics or docs', async () => {
    for (let i = 0; i < 6; i++) {
      await request(a.server).get('/health/live').expect(200);
      await request(a.server).get('/metrics').expect(200);
    }
    await request(a.server).get('/docs-json').expect(200);
    await request(setup.server).get('/orgs').set(adminHeaders).expect(200);
  });
});

describe('rate limits before key verification (e2e)', () => {
  let api: RunningApi;
  let compare: jest.SpyInstance;

  beforeAll(async () => {
    // Its own namespace: the client IP's anonymous bucket must start empty.
    api = await startApi({
      REDIS_PREFIX: `${testRunEnv().redisPrefix}:rl-bcrypt`,
      RATE_LIMIT_ANON_PER_MINUTE: '3',
    });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    compare = jest.spyOn(bcrypt, 'compare');
  });
  afterEach(() => compare.mockRestore());

  it('counts unverified keys in the IP bucket before any bcrypt', async () => {
    const p = await api.tenants.newProject();
    const devices = (key: string) =>
      request(api.server).get(`/projects/${p.projectId}/devices`).set('X-API-Key', key);
    const prefix = p.apiKey.split('.')[0];
    let n = 0;
    const freshWrongSecret = () => `${prefix}.${String(n++).padStart(43, 'W')}`;

    // Valid keys never use up the IP's allowance: each first, uncached verification is
    // counted while it runs and given back once the key verifies (5 keys, a limit of 3).
    compare.mockClear();
    await devices(p.apiKey).expect(200);
    for (let i = 0; i < 4; i++)
      await devices((await api.tenants.newKey(p.projectId)).key).expect(200);
    expect(compare).toHaveBeenCalledTimes(5);

    // A known prefix with fresh secrets: each under the limit costs one bcrypt (3 of 3);
    // past it, 429 without bcrypt.
    compare.mockClear();
    for (let i = 0; i < 3; i++) await devices(freshWrongSecret()).expect(401);
    expect(compare).toHaveBeenCalledTimes(3);
    compare.mockClear();
    for (let i = 0; i < 10; i++) {
      const res = await devices(freshWrongSecret()).expect(429);
      expect(res.headers['retry-after']).toBeDefined();
    }
    expect(compare).not.toHaveBeenCalled();

    // The verified key counts in its own bucket, so the blocked IP does not hold it back.
    for (let i = 0; i < 5; i++) await devices(p.apiKey).expect(200);
    expect(compare).not.toHaveBeenCalled();

    // A key this replica has not verified yet is, until then, just another caller from
    // that IP: it waits for the IP's minute like the rest.
    const other = await api.tenants.newKey(p.projectId);
    await devices(other.key).expect(429);
    expect(compare).not.toHaveBeenCalled();
  });
});

describe('rate limits while Redis is unreachable (e2e)', () => {
  // Every request waits for Redis to fail (up to 2 s) before it falls back.
  jest.setTimeout(60000);

  it('still counts client IPs (in memory) before any bcrypt', async () => {
    const run = testRunEnv();
    const target = new URL(run.redisUrl);
    const proxy = await TcpProxy.start({
      host: target.hostname,
      port: Number(target.port || 6379),
    });
    const api = await startApi({
      REDIS_URL: proxy.url(run.redisUrl),
      REDIS_PREFIX: `${run.redisPrefix}:rl-down`,
      RATE_LIMIT_ANON_PER_MINUTE: '3',
    });
    const compare = jest.spyOn(bcrypt, 'compare');
    try {
      const p = await api.tenants.newProject();
      const prefix = p.apiKey.split('.')[0];
      proxy.setMode('reset');
      compare.mockClear();
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const res = await request(api.server)
          .get(`/projects/${p.projectId}/devices`)
          .set('X-API-Key', `${prefix}.${String(i).padStart(43, 'D')}`);
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
      expect(compare).toHaveBeenCalledTimes(3);
    } finally {
      compare.mockRestore();
      proxy.setMode('pass');
      await api.close();
      await proxy.close();
    }
  });
});
