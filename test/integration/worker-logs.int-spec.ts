import { isolatedRun, IsolatedRun, TestProject as Project } from '@app/testing';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { QUEUES } from '@app/queue';
import { clock, rule, send, until } from '../support/fixtures';
import { injectBatch } from '../support/inject';
import { appEnv, exited, freePort, spawnApp, waitFor } from '../support/processes';
import { TestReceiver } from '../support/subscriber';
import { openQueue } from '../support/worker';

type Json = Record<string, any>;
const at = clock(Date.UTC(2025, 9, 1));

/**
 * What an operator reads in the worker's log at LOG_LEVEL=info: one line per meaningful
 * event, with its ids, never one per reading. The real worker (`apps/worker/src/main.ts`)
 * as a child process, on a database and queues of this file's own (so no other worker of
 * the run takes its jobs), and the api in this process.
 */
describe('worker logs (integration)', () => {
  jest.setTimeout(90000);

  let own: IsolatedRun;
  let api: RunningApi;
  let worker: ReturnType<typeof spawnApp>;
  let receiver: TestReceiver;
  const env = {
    // 3 attempts 0.2 s apart; a circuit opens after 2 failures and probes 1 s later.
    WEBHOOK_RETRY_SCHEDULE: '0.2,0.2',
    WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '2',
    WEBHOOK_CIRCUIT_RECOVERY_SECONDS: '1',
  };

  beforeAll(async () => {
    own = await isolatedRun('worker_logs');
    api = await startApi({ ...own.env, ...env });
    receiver = await new TestReceiver().start();
    const port = await freePort();
    worker = spawnApp('worker', appEnv({ ...own.env, ...env, WORKER_PORT: String(port) }));
    await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 60000);
  });
  afterAll(async () => {
    worker?.kill('SIGTERM');
    if (worker) await exited(worker);
    await api?.close();
    await receiver?.close();
    await own?.drop();
  });

  /** The worker's JSON log lines so far. */
  const lines = (): Json[] =>
    worker
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Json);
  const logged = (msg: RegExp, fields: Json = {}) =>
    lines().filter((l) => msg.test(l.msg) && Object.entries(fields).every(([k, v]) => l[k] === v));

  it('logs alerts opened and resolved, a delivery failed for good, and a circuit opened and closed, once each with ids', async () => {
    const http = () => request(api.server);
    const p: Project = await api.tenants.newProject();
    // /flaky answers 503 twice (the circuit opens), then 200 (the probe closes it).
    // /broken answers 400 to everything (a 4xx never opens a circuit): failed for good.
    const flakyUrl = `${receiver.url}/flaky`;
    let flakyCalls = 0;
    receiver.respond = (r) =>
      r.path.endsWith('/broken')
        ? { status: 400, body: 'no' }
        : ++flakyCalls <= 2
          ? { status: 503 }
          : { status: 200 };
    const hook = async (url: string, type: string) =>
      (
        await http()
          .post(`/projects/${p.projectId}/webhooks`)
          .set(p.headers)
          .send({ url, event_types: [type] })
          .expect(201)
      ).body as Json;
    const flaky = await hook(flakyUrl, 'alert.created');
    const broken = await hook(`${receiver.url}/broken`, 'alert.resolved');
    const hot = (await rule(api, p).expect(201)).body as Json;

    // 30 readings: 29 hot, one cold. One alert opens and resolves.
    await send(api, p, 'sensor-7', [...Array<number>(29).fill(9), 1], { metric: 't', at });

    const deliveries = () =>
      until(
        'both deliveries finished',
        async () =>
          (
            await http()
              .get(`/projects/${p.projectId}/webhook-deliveries`)
              .set(p.headers)
              .expect(200)
          ).body.items as Json[],
        {
          done: (l) => l.length === 2 && l.every((d) => d.status !== 'pending'),
          timeoutMs: 30000,
          everyMs: 100,
        },
      );
    const finished = await deliveries();
    const failed = finished.find((d) => d.webhook_id === broken.id)!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 3 });
    expect(finished.find((d) => d.webhook_id === flaky.id)).toMatchObject({
      status: 'succeeded',
      attempts: 3,
    });
    const [alert] = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
      .body.items as Json[];
    const ids = { projectId: p.projectId, ruleId: hot.id, deviceId: alert.device_id };

    // Logged after the commit; give the last lines a moment to reach the pipe.
    await until('the circuit closed line', () => logged(/^circuit closed/).length > 0, {
      timeoutMs: 5000,
    });
    const info = (l: Json) => l.level >= 30;
    expect(logged(/^alert opened$/, { ...ids, alertId: alert.id }).filter(info)).toHaveLength(1);
    expect(
      logged(/^alert resolved$/, { ...ids, alertId: alert.id, reason: 'condition_cleared' }),
    ).toHaveLength(1);
    expect(
      logged(/^delivery failed for good$/, {
        deliveryId: failed.id,
        webhookId: broken.id,
        attempts: 3,
        lastError: 'endpoint answered 400',
      }),
    ).toHaveLength(1);
    const circuit = { projectId: p.projectId, url: flakyUrl };
    expect(logged(/^circuit opened/, circuit)).toHaveLength(1);
    expect(logged(/^circuit opened/, circuit)[0]).toMatchObject({
      level: 40,
      webhookId: flaky.id,
      consecutiveFailures: 2,
    });
    expect(logged(/^circuit closed/, circuit)).toHaveLength(1);

    // 30 readings, one batch: nothing logged per reading, per batch or per evaluation.
    const pipeline = lines().filter((l) =>
      ['EvaluationService', 'BatchStoreService', 'EvaluationHandler', 'IngestHandler'].includes(
        l.context,
      ),
    );
    expect(pipeline.map((l) => l.msg).sort()).toEqual(['alert opened', 'alert resolved']);
    expect(lines().filter((l) => l.level >= 50)).toEqual([]);
  });
  it('logs a batch whose readings storage refused once, with its ids, and stores the rest', async () => {
    const http = () => request(api.server);
    const p: Project = await api.tenants.newProject();
    const device = (
      await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'poisoned' })
        .expect(201)
    ).body as Json;
    const ingest = openQueue(QUEUES.TELEMETRY_INGEST, own.env);
    try {
      // An offset PostgreSQL refuses, queued past the api (which would have rewritten it).
      const batchId = await injectBatch(api, ingest, p.projectId, device.id, [
        `{"ts":"${at(0)}","data":{"t":1}}`,
        `{"ts":"2025-01-01T00:00:01+20:00","data":{"t":2}}`,
        `{"ts":"${at(2)}","data":{"t":3}}`,
      ]);
      await until(
        'the refused reading set aside',
        async () =>
          (
            await http()
              .get(`/projects/${p.projectId}/rejected-readings`)
              .set(p.headers)
              .expect(200)
          ).body.items as Json[],
        { done: (items) => items.length === 1, timeoutMs: 30000 },
      );
      await until(
        'the set-aside line',
        () => logged(/^readings storage refused were set aside/).length > 0,
        { timeoutMs: 5000 },
      );
      const setAside = logged(/^readings storage refused were set aside/, {
        batchId,
        deviceId: device.id,
      });
      expect(setAside).toHaveLength(1);
      expect(setAside[0]).toMatchObject({ level: 40, rejected: 1 });
      const stored = await http()
        .get(`/telemetry/devices/${device.id}/telemetry`)
        .set(p.headers)
        .expect(200);
      expect((stored.body.items as Json[]).map((r) => r.data.t).sort()).toEqual([1, 3]);
      expect(lines().filter((l) => l.level >= 50)).toEqual([]);
    } finally {
      await ingest.close();
    }
  });
});
