import { testRunEnv } from '@app/testing';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { drained, INGEST, openQueue, startWorker } from '../support/worker';

const batch = (n: number) => ({
  device_external_id: 'pressure',
  events: Array.from({ length: n }, (_, i) => ({
    ts: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
    data: { v: i },
  })),
});
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
      await pause(600); // the backlog is sampled at most every 500 ms per replica
      const res = await post().expect(429);
      expect(res.body.message).toMatch(/backlog/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      const worker = await startWorker({ REDIS_PREFIX: prefix });
      try {
        await drained(queue);
        await pause(600);
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
      await pause(600);
      await request(api.server).post('/telemetry').set(p.headers).send(batch(1)).expect(429);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await api.close();
    }
  });
});
