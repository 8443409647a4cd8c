import { testRunEnv, TestProject } from '@app/testing';
import { Queue } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { at, deviceIdOf, rule, sleep, T0 } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { drained } from '../support/worker';

/**
 * Per-project quotas and read caps: counts of rules, webhooks and devices (422 naming the
 * quota), the span and the readings of an aggregate (422), the bytes of a page of readings
 * (a shorter page with next_cursor), and reads one project runs at once (429).
 */
describe('quotas and read caps (e2e)', () => {
  jest.setTimeout(60000);
  const env = {
    REDIS_PREFIX: `${testRunEnv().redisPrefix}:quotas`,
    QUOTA_RULES_PER_PROJECT: '2',
    QUOTA_WEBHOOKS_PER_PROJECT: '1',
    QUOTA_DEVICES_PER_PROJECT: '2',
    TELEMETRY_AGGREGATE_MAX_DAYS: '30',
    TELEMETRY_AGGREGATE_MAX_ROWS: '50',
    TELEMETRY_PAGE_MAX_BYTES: '10240',
    TELEMETRY_READS_PER_PROJECT: '1',
  };
  let stack: Stack;
  let api: RunningApi;
  let queue: Queue;
  let db: DataSource;

  beforeAll(async () => {
    stack = await startStack(env);
    ({ api, db } = stack);
    queue = stack.pipeline.ingest;
  });
  afterAll(() => stack.close());

  const http = () => request(api.server);
  const namedRule = (p: TestProject, name: string) => rule(api, p, { name, threshold: 1 });
  const ingest = (p: TestProject, device: string, events: Array<{ ts: string; data: object }>) =>
    http().post('/telemetry').set(p.headers).send({ device_external_id: device, events });

  it('refuses a rule past QUOTA_RULES_PER_PROJECT, also when requests race, and only in that project', async () => {
    const p = await api.tenants.newProject();
    const raced = await Promise.all(Array.from({ length: 5 }, (_, i) => namedRule(p, `r${i}`)));
    expect(raced.map((r) => r.status).sort()).toEqual([201, 201, 422, 422, 422]);
    const refused = raced.find((r) => r.status === 422)!;
    expect(refused.body.message).toMatch(/quota of 2 rules \(QUOTA_RULES_PER_PROJECT\)/);
    expect(refused.body.details).toEqual([{ field: 'rules', message: expect.any(String) }]);
    const other = await api.tenants.newProject();
    await namedRule(other, 'mine').expect(201);
    // Deleting one makes room again.
    await http()
      .delete(`/rules/${raced.find((r) => r.status === 201)!.body.id}`)
      .set(p.headers)
      .expect(204);
    await namedRule(p, 'again').expect(201);
  });

  it('refuses a webhook past QUOTA_WEBHOOKS_PER_PROJECT', async () => {
    const p = await api.tenants.newProject();
    const hook = () =>
      http()
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: 'https://hooks.example.com/q' });
    await hook().expect(201);
    const res = await hook().expect(422);
    expect(res.body.message).toMatch(/QUOTA_WEBHOOKS_PER_PROJECT/);
  });

  it('refuses a device past QUOTA_DEVICES_PER_PROJECT, created or auto-registered, and still ingests for known ones', async () => {
    const p = await api.tenants.newProject();
    await http()
      .post(`/projects/${p.projectId}/devices`)
      .set(p.headers)
      .send({ external_id: 'a' })
      .expect(201);
    await ingest(p, 'b', [{ ts: at(0), data: { t: 1 } }]).expect(202);
    const created = await http()
      .post(`/projects/${p.projectId}/devices`)
      .set(p.headers)
      .send({ external_id: 'c' })
      .expect(422);
    expect(created.body.message).toMatch(/QUOTA_DEVICES_PER_PROJECT/);
    const registered = await ingest(p, 'd', [{ ts: at(0), data: { t: 1 } }]).expect(422);
    expect(registered.body.message).toMatch(/QUOTA_DEVICES_PER_PROJECT/);
    await ingest(p, 'a', [{ ts: at(1), data: { t: 1 } }]).expect(202);
    await drained(queue);
  });

  it('registers one new device once when its first batches race at the last free place', async () => {
    const p = await api.tenants.newProject();
    await ingest(p, 'first', [{ ts: at(0), data: { t: 1 } }]).expect(202);
    const raced = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ingest(p, 'last', [{ ts: at(i), data: { t: i } }])),
    );
    expect(raced.map((r) => r.status)).toEqual(Array(6).fill(202));
    await drained(queue);
  });

  describe('telemetry reads', () => {
    let p: TestProject;
    let deviceId: string;
    // ~4 KB of JSON per reading that compresses to a fraction on disk: the cap is on what
    // the response holds, not on what PostgreSQL stores.
    const BIG = Object.fromEntries(
      Array.from({ length: 4 }, (_, i) => [`n${i}`, 'x'.repeat(1000)]),
    );
    beforeAll(async () => {
      p = await api.tenants.newProject();
      await ingest(
        p,
        'reader',
        Array.from({ length: 60 }, (_, i) => ({ ts: at(i), data: { t: i, ...BIG } })),
      ).expect(202);
      await drained(queue);
      deviceId = (await deviceIdOf(db, p.projectId, 'reader'))!;
    });
    const aggregate = (query: Record<string, unknown>) =>
      http()
        .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
        .set(p.headers)
        .query({ metric: 't', bucket_seconds: 86400, agg: 'count', ...query });

    it('refuses an aggregate spanning more than TELEMETRY_AGGREGATE_MAX_DAYS', async () => {
      const from = new Date(T0).toISOString();
      const res = await aggregate({ from, to: new Date(T0 + 31 * 86400000).toISOString() }).expect(
        422,
      );
      expect(res.body.message).toMatch(/TELEMETRY_AGGREGATE_MAX_DAYS/);
      await aggregate({ from, to: at(40) }).expect(200);
    });

    it('refuses an aggregate over more than TELEMETRY_AGGREGATE_MAX_ROWS readings', async () => {
      const res = await aggregate({ from: at(0), to: at(60) }).expect(422);
      expect(res.body.message).toMatch(/more than 50 readings .*TELEMETRY_AGGREGATE_MAX_ROWS/);
      const ok = await aggregate({ from: at(0), to: at(50) }).expect(200);
      expect(ok.body.items).toEqual([{ bucket_start: at(0), value: 50, count: 50 }]);
    });

    it('cuts a page of readings at TELEMETRY_PAGE_MAX_BYTES; a walk still returns each reading once', async () => {
      for (const [path, query, order] of [
        ['telemetry', {}, -1],
        ['telemetry/since', { since_ts: T0 / 1000 - 1 }, 1],
      ] as const) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const res = await http()
            .get(`/telemetry/devices/${deviceId}/${path}`)
            .set(p.headers)
            .query({ ...query, limit: 1000, ...(cursor && { cursor }) })
            .expect(200);
          pages++;
          expect(res.body.items.length).toBeLessThanOrEqual(3);
          expect(JSON.stringify(res.body.items).length).toBeLessThan(10240 + 5000);
          seen.push(...res.body.items.map((r: { ts: string }) => r.ts));
          cursor = res.body.next_cursor ?? undefined;
        } while (cursor && pages < 100);
        const expected = Array.from({ length: 60 }, (_, i) => at(i));
        expect({ path, seen }).toEqual({ path, seen: order < 0 ? expected.reverse() : expected });
        expect(pages).toBeGreaterThanOrEqual(20);
      }
    });

    it('answers 429 while the project already runs TELEMETRY_READS_PER_PROJECT reads', async () => {
      // Hold the table so the first read waits inside the database.
      const runner = db.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      await runner.query(`LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE`);
      let first: Promise<request.Response> | undefined;
      try {
        first = http()
          .get(`/telemetry/devices/${deviceId}/telemetry`)
          .set(p.headers)
          .then((r) => r);
        // A head start: the read gate is in the api's memory, nothing to wait on (too short fails).
        await sleep(300);
        const second = await http()
          .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
          .set(p.headers)
          .query({ metric: 't', from: at(0), to: at(10), bucket_seconds: 60, agg: 'count' });
        expect(second.status).toBe(429);
        expect(second.body.message).toMatch(/TELEMETRY_READS_PER_PROJECT/);
        expect(second.headers['retry-after']).toBeDefined();
      } finally {
        await runner.commitTransaction();
        await runner.release();
      }
      expect((await first!).status).toBe(200);
    });
  });
});
