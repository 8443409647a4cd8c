import { testRunEnv } from '@app/testing';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { readings, sleep } from '../support/fixtures';
import { drained, INGEST, openQueue, startWorker } from '../support/worker';

const batch = (n: number) => ({
  device_external_id: 'pressure',
  events: readings(n, (k) => ({ v: k })),
});

describe('ingest backpressure (e2e)', () => {
  // A namespace of its own: only this file's batches count against the bounds.
  const prefix = `${testRunEnv().redisPrefix}:bp`;

  it('answers 429 with Retry-After once the backlog passes its job bound, and accepts again when drained', async () => {
    const api: RunningApi = await startApi({ REDIS_PREFIX: prefix, INGEST_BACKLOG_MAX_JOBS: '2' });
    const queue = openQueue(INGEST, { REDIS_PREFIX: prefix });
    try {
      const p = await api.tenants.newProject();
      const post = () => request(api.server).post('/telemetry').set(p.headers).send(batch(10));
      await post().expect(202);
      await post().expect(202);
      await sleep(600); // the backlog is sampled at most every 500 ms per replica
      const res = await post().expect(429);
      expect(res.body.message).toMatch(/backlog/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      const worker = await startWorker({ REDIS_PREFIX: prefix });
      try {
        await drained(queue);
        await sleep(600);
        await post().expect(202);
      } finally {
        await worker.close();
      }
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await api.close();
    }
  });

  it('also bounds the bytes held in the backlog', async () => {
    const api: RunningApi = await startApi({
      REDIS_PREFIX: `${prefix}2`,
      INGEST_BACKLOG_MAX_BYTES: '5000',
    });
    const queue = openQueue(INGEST, { REDIS_PREFIX: `${prefix}2` });
    try {
      const p = await api.tenants.newProject();
      await request(api.server).post('/telemetry').set(p.headers).send(batch(100)).expect(202); // ~6 KB
      await sleep(600);
      await request(api.server).post('/telemetry').set(p.headers).send(batch(1)).expect(429);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await api.close();
    }
  });

  it('one project filling its backlog share leaves another project ingesting (202)', async () => {
    const env = {
      REDIS_PREFIX: `${prefix}3`,
      INGEST_BACKLOG_MAX_JOBS: '3',
      INGEST_BACKLOG_PROJECT_MAX_JOBS: '2',
    };
    const api: RunningApi = await startApi(env);
    const queue = openQueue(INGEST, env);
    try {
      const noisy = await api.tenants.newProject();
      const quiet = await api.tenants.newProject();
      const post = (p: { headers: Record<string, string> }) =>
        request(api.server).post('/telemetry').set(p.headers).send(batch(10));
      // The noisy tenant sends until it is told to back off (no worker drains meanwhile).
      let refused;
      for (let i = 0; i < 6 && !refused; i++) {
        const res = await post(noisy);
        if (res.status === 429) refused = res;
        else expect(res.status).toBe(202);
        await sleep(600);
      }
      expect(refused?.body.message).toMatch(/INGEST_BACKLOG_PROJECT_MAX_JOBS/);
      expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      await post(quiet).expect(202);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await api.close();
    }
  });

  it("bounds a project's bytes in the backlog, letting a single batch in whatever its size", async () => {
    const env = { REDIS_PREFIX: `${prefix}4`, INGEST_BACKLOG_PROJECT_MAX_BYTES: '1000' };
    const api: RunningApi = await startApi(env);
    const queue = openQueue(INGEST, env);
    try {
      const p = await api.tenants.newProject();
      await request(api.server).post('/telemetry').set(p.headers).send(batch(100)).expect(202); // ~6 KB
      const res = await request(api.server).post('/telemetry').set(p.headers).send(batch(1));
      expect(res.status).toBe(429);
      expect(res.body.message).toMatch(/INGEST_BACKLOG_PROJECT_MAX_BYTES/);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await api.close();
    }
  });
});
