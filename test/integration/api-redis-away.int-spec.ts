import { testRunEnv } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { until } from '../support/fixtures';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * A manual delivery retry (or a test event) is recorded in PostgreSQL; its enqueue is a
 * courtesy the worker's sweeper makes good within a minute. With Redis away the api must
 * answer at once (202, the row due now), not hold the request on a queue waiting for Redis.
 */
describe('the api with Redis away (integration)', () => {
  jest.setTimeout(60000);
  let proxy: TcpProxy;
  let api: RunningApi;

  beforeAll(async () => {
    const run = testRunEnv();
    const target = new URL(run.redisUrl);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    api = await startApi({ REDIS_URL: proxy.url(run.redisUrl) });
  });
  afterEach(() => proxy.setMode('pass'));
  afterAll(async () => {
    await api.close();
    await proxy.close();
  });

  it('answers a delivery retry at once, the delivery due now', async () => {
    const p = await api.tenants.newProject();
    const http = () => request(api.server);
    const hook = await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: 'http://127.0.0.1:9/unused' })
      .expect(201);
    // A delivery to retry (no worker here: it stays pending, its job waiting in Redis).
    const test = await http().post(`/webhooks/${hook.body.id}/test`).set(p.headers).expect(202);

    proxy.setMode('reset');
    const started = Date.now();
    const res = await http()
      .post(`/webhook-deliveries/${test.body.id}/retry`)
      .set(p.headers)
      .timeout(20000)
      .catch((err: { status?: number; timeout?: number }) => ({ status: err.status ?? 0 }));
    expect({ status: res.status, fast: Date.now() - started < 5000 }).toEqual({
      status: 202,
      fast: true,
    });
    const [row] = await api.app
      .get(DataSource)
      .query(
        `SELECT status, next_attempt_at <= now() AS due FROM webhook_deliveries WHERE id = $1`,
        [test.body.id],
      );
    expect(row).toEqual({ status: 'pending', due: true });

    // A test event too: recorded, answered at once, sent when the sweeper finds it.
    const sent = Date.now();
    const again = await http()
      .post(`/webhooks/${hook.body.id}/test`)
      .set(p.headers)
      .timeout(20000)
      .catch((err: { status?: number }) => ({ status: err.status ?? 0 }));
    expect({ status: again.status, fast: Date.now() - sent < 5000 }).toEqual({
      status: 202,
      fast: true,
    });
  });

  it('answers telemetry 503 within about 2 s while Redis is partitioned away, then 202 again', async () => {
    const p = await api.tenants.newProject();
    const post = () =>
      request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .send({
          device_external_id: 'd',
          events: [{ ts: new Date().toISOString(), data: { v: 1 } }],
        })
        .timeout(20000)
        .catch((err: { status?: number }) => ({ status: err.status ?? 0, headers: {} }));
    const accepted = () =>
      until('telemetry to be accepted', () => post().then((r) => r.status), {
        done: (status) => status === 202,
        timeoutMs: 20000,
        everyMs: 250,
      });
    // Redis may still be coming back from the previous test's cut.
    await accepted();

    // Connections stay open and nothing answers: each Redis command would wait out its
    // 2 s timeout. The rate limit and the backlog check fail open after 250 ms each;
    // the enqueue's deadline answers 503.
    proxy.setMode('blackhole');
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const res = await post();
      expect({ status: res.status, fast: Date.now() - started < 3000 }).toEqual({
        status: 503,
        fast: true,
      });
    }

    proxy.setMode('pass');
    await accepted();
  });
});
