import { loadConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { QUEUES, queuePrefix } from '@app/queue';
import { declaredPatternOf, RedisService } from '@app/redis';
import { IngestBacklog } from '@app/telemetry';
import { isolatedRun, IsolatedRun, testConfigOverrides } from '@app/testing';
import { CircuitBreakerService } from '@app/webhooks';
import { ConfigService } from '@nestjs/config';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { at, deviceIdOf, send } from '../support/fixtures';
import { RedisCluster } from '../support/redis-cluster';
import { runPipelineScenario } from '../support/pipeline-scenario';
import { closeInOrder } from '../support/shutdown';
import { TestReceiver } from '../support/subscriber';
import { Pipeline, RunningWorker, startWorker } from '../support/worker';

/**
 * The api and the worker on a real three-master Redis Cluster (REDIS_URL
 * `redis+cluster://…`): every queue of the pipeline, batch numbering and backlog
 * accounting (a two-key script), the circuit breaker's state shared between processes,
 * both rate limits shared between api replicas, the periodic duties that walk the
 * keyspace. A command whose keys span slots fails on a cluster (CROSSSLOT), so each of
 * these passing is the check; and every key written must be one declared, with its hash
 * tag, in libs/redis/src/key-space.ts.
 */
describe('on a Redis Cluster (integration)', () => {
  jest.setTimeout(120000);

  let cluster: RedisCluster;
  let own: IsolatedRun;
  let api: RunningApi;
  let second: RunningApi;
  let worker: RunningWorker;
  let receiver: TestReceiver;
  let pipeline: Pipeline;
  let env: Record<string, string>;

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
    own = await isolatedRun('cluster');
    env = {
      ...(own.env as Record<string, string>),
      REDIS_URL: cluster.url,
      RATE_LIMIT_INGEST_PER_MINUTE: '8',
      RATE_LIMIT_ANON_PER_MINUTE: '3',
    };
    api = await startApi(env);
    second = await startApi(env);
    worker = await startWorker(env);
    receiver = await new TestReceiver().start();
    pipeline = new Pipeline(env);
  });
  afterAll(() =>
    closeInOrder([
      ['pipeline', () => pipeline?.close()],
      ['worker', () => worker?.close()],
      ['api', () => api?.close()],
      ['second api', () => second?.close()],
      ['receiver', () => receiver?.close()],
      ['database', () => own?.drop()],
      ['cluster', () => cluster?.stop()],
    ]),
  );

  const prefix = () => String(own.env.REDIS_PREFIX);

  it('stores, evaluates (both ways), opens, acknowledges and delivers signed webhooks', async () => {
    // The second batch through the other api replica: one batch numbering for both.
    const db = worker.app.get(DataSource);
    const deviceId = await runPipelineScenario({
      api,
      second,
      worker,
      pipeline,
      receiver,
      direct: db,
      device: 'c1',
    });
    const [{ n }] = await db.query(
      `SELECT count(*)::int AS n FROM telemetry WHERE device_id = $1`,
      [deviceId],
    );
    expect(n).toBe(4);
  });

  it('numbers batches, gives their backlog back, and audits it across the shards', async () => {
    const p = await api.tenants.newProject();
    await send(api, p, 'seq', [1]);
    await send(second, p, 'seq', [2], { start: 1 });
    await send(api, p, 'seq', [3], { start: 2 });
    await pipeline.idle();
    const db = worker.app.get(DataSource);
    const deviceId = (await deviceIdOf(db, p.projectId, 'seq'))!;
    const [{ ingest_seq }] = await db.query(`SELECT ingest_seq FROM devices WHERE id = $1`, [
      deviceId,
    ]);
    expect(Number(ingest_seq)).toBe(3);

    const backlog = worker.app.get(IngestBacklog);
    const redis = worker.app.get(RedisService);
    expect(await redis.client.exists(backlog.backlogKey(p.projectId))).toBe(0);
    expect(Number(await redis.client.get(backlog.seqKey(p.projectId, deviceId)))).toBe(3);
    // A counter left without expiry (as old versions wrote them) is found on its node.
    await redis.client.persist(backlog.seqKey(p.projectId, deviceId));
    expect(await backlog.expireIdleCounters()).toBeGreaterThanOrEqual(1);
    expect(await redis.client.pttl(backlog.seqKey(p.projectId, deviceId))).toBeGreaterThan(0);
    // A place whose batch is gone (an api that died mid-enqueue) is released by the audit.
    await redis.client.hset(backlog.backlogKey(p.projectId), 'gone:1', `10:${Date.now() - 600000}`);
    await redis.client.sadd(backlog.projectsKey, p.projectId);
    await expect(backlog.audit(pipeline.ingest)).resolves.toBe(1);
  });

  it('shares a circuit between processes', async () => {
    const config = new ConfigService(
      loadConfig(testConfigOverrides({ ...env, WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '2' })),
    );
    const redis = [new RedisService(config as never), new RedisService(config as never)];
    try {
      const [a, b] = redis.map((r) => new CircuitBreakerService(r, config as never));
      const circuit = { projectId: 'cluster-project', url: 'https://hooks.example.com/x' };
      await a.report(circuit, false);
      await b.report(circuit, false);
      expect((await a.decide(circuit)).action).toBe('wait');
      expect((await b.read(circuit)).state).toBe('open');
    } finally {
      await Promise.all(redis.map((r) => r.onApplicationShutdown()));
    }
  });

  it("counts a key's requests and an address's across api replicas", async () => {
    const p = await api.tenants.newProject();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const target = i % 2 ? second : api;
      const res = await request(target.server)
        .post('/telemetry')
        .set(p.headers)
        .send({ device_external_id: 'rl', events: [{ ts: at(i), data: { t: i } }] });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 202)).toHaveLength(8);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);

    const anonymous: number[] = [];
    for (let i = 0; i < 4; i++) {
      const target = i % 2 ? second : api;
      anonymous.push(
        (await request(target.server).get('/alerts/x').set('X-API-Key', 'tpk_nope.nope')).status,
      );
    }
    expect(anonymous).toEqual([401, 401, 401, 429]);
  });

  it('reports queue depth from the cluster', async () => {
    // The batches the tests before sent may still be waiting: count once they are stored.
    await pipeline.idle();
    const ingestDepth = async () => {
      const { body } = await worker.app.get(MetricsService).render();
      return body.split('\n').filter((l) => l.startsWith('queue_jobs{queue="telemetry-ingest"'));
    };
    // A scrape that misses its deadline (a busy CI machine) keeps the values it had, and
    // the first has none: the next scrape reports.
    let lines = await ingestDepth();
    for (let i = 0; i < 2 && lines.length === 0; i++) lines = await ingestDepth();
    expect(lines).toContain('queue_jobs{queue="telemetry-ingest",state="waiting"} 0');
  });

  it('writes only declared keys, and spreads the queues over the shards', async () => {
    const keys = await cluster.keys(`*${prefix()}*`);
    expect(keys.length).toBeGreaterThan(0);
    const undeclared = keys.filter((k) => !declaredPatternOf(k, prefix(), true));
    expect(undeclared).toEqual([]);

    const redis = { url: cluster.url, prefix: prefix() };
    const nodes = await Promise.all(
      Object.values(QUEUES).map((q) => cluster.nodeOf(`${queuePrefix(redis, q)}:${q}:wait`)),
    );
    expect(new Set(nodes).size).toBeGreaterThan(1);
  });
  // Last: it takes the cluster away.
  it('answers at once while the whole cluster is away: reads served, ingest refused with 503', async () => {
    const p = await api.tenants.newProject();
    // The worker goes first: with Redis away it would wait out its shutdown grace (the
    // process exits then; a test has no such timer).
    await pipeline.close();
    await worker.close();
    pipeline = undefined as never;
    worker = undefined as never;
    await cluster.stop();
    const timed = async (req: request.Test) => {
      const started = Date.now();
      const res = await req
        .timeout(20000)
        .catch((err: { status?: number }) => ({ status: err.status ?? 0 }));
      return { status: res.status, fast: Date.now() - started < 5000 };
    };
    // Requests keep coming while the clients notice: every one answered fast.
    for (let i = 0; i < 3; i++) {
      expect(
        await timed(request(api.server).get(`/projects/${p.projectId}/alerts`).set(p.headers)),
      ).toEqual({ status: 200, fast: true });
      expect(
        await timed(
          request(api.server)
            .post('/telemetry')
            .set(p.headers)
            .send({ device_external_id: 'away', events: [{ ts: at(0), data: { t: 1 } }] }),
        ),
      ).toEqual({ status: 503, fast: true });
    }
  });
});
