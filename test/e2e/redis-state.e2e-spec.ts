import { MetricsService } from '@app/observability';
import { RedisService } from '@app/redis';
import { IngestBacklog, ingestJobId, takenNumberJobId } from '@app/telemetry';
import { testRunEnv, TestProject as Project } from '@app/testing';
import { JobState, Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { at, readings, storedCount } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { drained, INGEST, openQueue, RunningWorker } from '../support/worker';

/**
 * What ingestion keeps in Redis, and what happens when Redis loses it: a device's batch
 * counter is re-seeded from PostgreSQL, nothing is kept per batch once the batch is
 * stored, and counters of idle devices expire.
 */
describe('ingest state in Redis (e2e)', () => {
  jest.setTimeout(60000);
  let stack: Stack;
  let api: RunningApi;
  let worker: RunningWorker;
  let queue: Queue;
  let db: DataSource;
  let redis: RedisService;
  const { redisPrefix } = testRunEnv();

  beforeAll(async () => {
    stack = await startStack();
    ({ api, worker, db } = stack);
    queue = stack.pipeline.ingest;
    redis = api.app.get(RedisService);
  });
  afterAll(() => stack.close());

  let next = 0;
  const post = (p: Project, device: string) => {
    const start = next;
    next += 10;
    return request(api.server)
      .post('/telemetry')
      .set(p.headers)
      .send({
        device_external_id: device,
        events: readings(10, (_k, i) => ({ v: i }), { start }),
      })
      .expect(202);
  };
  const device = async (p: Project, externalId: string) =>
    (
      await db.query(
        `SELECT id, ingest_seq::int AS seq FROM devices WHERE project_id = $1 AND external_id = $2`,
        [p.projectId, externalId],
      )
    )[0] as { id: string; seq: number };
  /** Keys matching `pattern`, on every node when Redis is a cluster. */
  const keys = async (pattern: string): Promise<string[]> => {
    const found: string[] = [];
    for await (const { keys: batch } of redis.scan(pattern)) found.push(...batch);
    return found;
  };
  /** The device's batch counter, wherever a version of the code keeps it. */
  const counterKeys = async (deviceId: string) =>
    (await keys(`${redisPrefix}:ingest:*${deviceId}`)).filter((k) => k.includes(':seq:'));

  it('numbers a device after what PostgreSQL applied when Redis lost its counter', async () => {
    const p = await api.tenants.newProject();
    await post(p, 'lost');
    await post(p, 'lost');
    await drained(queue);
    const d = await device(p, 'lost');
    expect(d.seq).toBe(2);

    // A Redis restarted without persistence, or flushed: the counter is gone.
    const gone = await counterKeys(d.id);
    expect(gone.length).toBeGreaterThan(0);
    for (const key of gone) await redis.client.del(key);

    await post(p, 'lost');
    await post(p, 'lost');
    await drained(queue);
    expect((await device(p, 'lost')).seq).toBe(4);
  });

  it('skips numbers whose job is still in Redis when a counter went back (a lagging replica)', async () => {
    const p = await api.tenants.newProject();
    await post(p, 'lagging');
    await post(p, 'lagging');
    await drained(queue);
    const d = await device(p, 'lagging');
    for (const key of await counterKeys(d.id)) await redis.client.set(key, '0');

    // 1 and 2 are completed jobs still in Redis: an add under their ids would be dropped.
    await post(p, 'lagging');
    await post(p, 'lagging');
    await drained(queue);
    expect((await device(p, 'lagging')).seq).toBe(4);
    expect(await storedCount(db, d.id)).toBe(40);
  });

  it('raises a counter that went back once the worker stores a batch numbered below what it applied', async () => {
    const p = await api.tenants.newProject();
    await post(p, 'behind');
    await post(p, 'behind');
    await drained(queue);
    const d = await device(p, 'behind');
    // The replica had neither the numbers nor the finished jobs.
    for (const job of await queue.getJobs(['completed']))
      if (job.data.deviceId === d.id) await job.remove();
    for (const key of await counterKeys(d.id)) await redis.client.set(key, '0');

    await post(p, 'behind'); // numbered 1: stored (out of order), and the counter is raised
    await drained(queue);
    await post(p, 'behind');
    await drained(queue);
    expect((await device(p, 'behind')).seq).toBe(3);
    expect(await storedCount(db, d.id)).toBe(40);
    const metrics = (await worker.app.get(MetricsService).render()).body;
    expect(metrics).toMatch(/telemetry_ingest_counter_behind_total [1-9]/);
  });

  it('keeps nothing per batch once it is stored, and lets idle counters expire', async () => {
    const p = await api.tenants.newProject();
    const batchIds: string[] = [];
    for (let i = 0; i < 3; i++) batchIds.push((await post(p, 'tidy')).body.batch_id as string);
    await drained(queue);
    const d = await device(p, 'tidy');
    for (const batchId of batchIds) expect(await keys(`${redisPrefix}:*${batchId}*`)).toEqual([]);
    expect(await keys(`${redisPrefix}:ingest:*${p.projectId}*backlog*`)).toEqual([]);
    const [counter] = await counterKeys(d.id);
    const ttl = await redis.client.pttl(counter);
    expect(ttl).toBeGreaterThan(0);

    // A counter an older version left without an expiry gets one.
    const old = api.app
      .get(IngestBacklog)
      .seqKey('any project', '00000000-0000-4000-8000-00000000c0de');
    await redis.client.set(old, '7');
    expect(await api.app.get(IngestBacklog).expireIdleCounters()).toBeGreaterThanOrEqual(1);
    expect(await redis.client.pttl(old)).toBeGreaterThan(0);
    await redis.client.del(old);
  });

  it("keeps a batch's place and body while its job, under an id of its own, waits", async () => {
    // A counter that went back: the number's id was still in use (another batch's completed
    // job), so the api queued this batch under an id of its own.
    const backlog = api.app.get(IngestBacklog);
    const p = await api.tenants.newProject();
    const deviceId = randomUUID();
    const batchId = randomUUID();
    const admitted = { projectId: p.projectId, deviceId, batchId, body: Buffer.from('{}') };
    const jobKey = (id: string) => `unused:${id}`;
    let admission = await backlog.admit({ ...admitted, acceptedAt: Date.now(), jobKey });
    if (admission.kind === 'unseeded')
      admission = await backlog.admit({ ...admitted, acceptedAt: Date.now(), jobKey, floor: 0 });
    if (admission.kind !== 'admitted') throw new Error(admission.kind);
    const number = ingestJobId(deviceId, admission.seq);
    const states: Record<string, JobState> = {
      [number]: 'completed',
      [takenNumberJobId(number, batchId)]: 'waiting',
    };
    // Every other batch in this namespace (other suites' batches in flight) reads as
    // waiting, so the audit leaves it alone: it counts only this one.
    const queue = { getJobState: async (id: string) => states[id] ?? ('waiting' as const) };
    expect(await backlog.audit(queue, Date.now() + 10 * 60000)).toBe(0);
    expect(await backlog.body(p.projectId, batchId)).toEqual(Buffer.from('{}'));
    // Never kept forever, even if no release ever comes.
    const ttl = await redis.client.pttl(backlog.bodyKey(p.projectId, batchId));
    expect(ttl).toBeGreaterThan(29 * 24 * 3600 * 1000);
    // Once its own job is done, the place and the body go.
    states[takenNumberJobId(number, batchId)] = 'completed';
    expect(await backlog.audit(queue, Date.now() + 10 * 60000)).toBe(1);
    expect(await backlog.body(p.projectId, batchId)).toBeNull();
  });

  it('gives back the backlog places of batches whose job vanished', async () => {
    const prefix = `${redisPrefix}:audit`;
    const env = { REDIS_PREFIX: prefix, INGEST_BACKLOG_PROJECT_MAX_JOBS: '2' };
    const noWorker = await startApi(env);
    const auditQueue = openQueue(INGEST, env);
    try {
      const p = await noWorker.tenants.newProject();
      const send = () =>
        request(noWorker.server)
          .post('/telemetry')
          .set(p.headers)
          .send({
            device_external_id: 'gone',
            events: [{ ts: at(0), data: {} }],
          });
      await send().expect(202);
      await send().expect(202);
      await send().expect(429);
      const bodies = () => keys(`${prefix}:ingest:*${p.projectId}*:body:*`);
      expect(await bodies()).toHaveLength(2);
      await auditQueue.obliterate({ force: true }); // an operator cleared the queue by hand
      const backlog = noWorker.app.get(IngestBacklog);
      expect(await backlog.audit(auditQueue, Date.now() + 10 * 60000)).toBe(2);
      expect(await bodies()).toEqual([]); // the batches' bodies go with their places
      await send().expect(202);
    } finally {
      await auditQueue.obliterate({ force: true });
      await auditQueue.close();
      await noWorker.close();
    }
  });
});
