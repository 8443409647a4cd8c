import { DeviceAlertLock } from '@app/alerts';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from './api';
import { deviceIdOf, rule, send } from './fixtures';
import { TestReceiver } from './subscriber';
import { drained, Pipeline, RunningWorker } from './worker';

type Json = Record<string, any>;

/**
 * The pipeline across every queue, for suites that run it on other infrastructure (a
 * pooler, a Redis Cluster): a batch evaluated in its storing transaction, one left to the
 * `rule-evaluation` queue while another transaction holds the device, the alert opened
 * and acknowledged, both webhooks received signed. `second` sends the second batch (an
 * api replica sharing the numbering); `direct` reads the device's id. Returns it.
 */
export async function runPipelineScenario(s: {
  api: RunningApi;
  second?: RunningApi;
  worker: RunningWorker;
  pipeline: Pipeline;
  receiver: TestReceiver;
  direct: DataSource;
  device: string;
}): Promise<string> {
  const { api, worker, pipeline, receiver, device } = s;
  const http = () => request(api.server);
  const p = await api.tenants.newProject();
  await rule(api, p).expect(201);
  await http()
    .post(`/projects/${p.projectId}/webhooks`)
    .set(p.headers)
    .send({ url: receiver.url, event_types: ['alert.created', 'alert.acknowledged'] })
    .expect(201);

  // In the storing transaction: the first batch.
  await send(api, p, device, [1, 1], { metric: 't' });
  await pipeline.idle();
  const deviceId = (await deviceIdOf(s.direct, p.projectId, device))!;

  // From the queue: a batch stored while another transaction holds the device.
  const lock = worker.app.get(DeviceAlertLock);
  let release!: () => void;
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  const holder = worker.app.get(DataSource).transaction(async (em) => {
    await lock.take(em, deviceId);
    held();
    await new Promise<void>((r) => (release = r));
  });
  await isHeld;
  await send(s.second ?? api, p, device, [9, 9], { metric: 't', start: 2 });
  await drained(pipeline.ingest);
  release();
  await holder;
  await pipeline.idle();

  const alerts = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
    .body.items as Json[];
  expect(alerts).toHaveLength(1);
  await http().post(`/alerts/${alerts[0].id}/ack`).set(p.headers).expect(200);

  const received = await receiver.waitFor(2, 30000);
  expect(received.map((r) => (JSON.parse(r.body) as Json).type).sort()).toEqual([
    'alert.acknowledged',
    'alert.created',
  ]);
  expect(received.every((r) => r.headers['webhook-signature']?.startsWith('v1,'))).toBe(true);
  return deviceId;
}
