import { MetricsService } from '@app/observability';
import { TestProject } from '@app/testing';
import { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { at, deviceIdOf, rule } from '../support/fixtures';
import { injectBatch } from '../support/inject';
import { Stack, startStack } from '../support/stack';
import { Pipeline, RunningWorker } from '../support/worker';

/**
 * Poison input: values that pass the api but that storage or evaluation cannot take must
 * never stall a device. What cannot be stored is set aside (visible to the project), the
 * rest of the batch and every later batch are stored, and evaluation goes on.
 */
describe('poison input (e2e)', () => {
  jest.setTimeout(60000);
  let stack: Stack;
  let api: RunningApi;
  let worker: RunningWorker;
  let pipeline: Pipeline;
  let ingest: Queue;
  let db: DataSource;

  beforeAll(async () => {
    stack = await startStack();
    ({ api, worker, pipeline, db } = stack);
    ingest = pipeline.ingest;
  });
  afterAll(() => stack.close());

  const http = () => request(api.server);
  const idle = () => pipeline.idle(2);
  const newDevice = async (p: TestProject, externalId: string): Promise<string> =>
    (
      await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: externalId })
        .expect(201)
    ).body.id as string;
  const postRaw = (p: TestProject, raw: string) =>
    http().post('/telemetry').set(p.headers).set('Content-Type', 'application/json').send(raw);
  const hotRule = (p: TestProject) => rule(api, p).expect(201);
  const expectOneOpenAlertAt = async (p: TestProject, ts: string) => {
    const alerts = await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200);
    expect(alerts.body.items).toEqual([
      expect.objectContaining({ status: 'open', triggered_at: ts }),
    ]);
  };
  /** 1e-396, written the way jsonb keeps it: a float8 cast of it raises 22003. */
  const tiny = `0.${'0'.repeat(296)}1e-99`;
  const stored = async (deviceId: string) =>
    (
      await db.query(`SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts`, [deviceId])
    ).map((r: { ts: Date; data: unknown }) => ({ ts: r.ts.toISOString(), data: r.data }));

  const inject = (p: TestProject, deviceId: string, events: string[]) =>
    injectBatch(api, ingest, p.projectId, deviceId, events);

  it('sets aside the one reading storage refuses, stores the rest and every later batch', async () => {
    const p = await api.tenants.newProject();
    const deviceId = await newDevice(p, 'poisoned');
    const batchId = await inject(p, deviceId, [
      `{"ts":"${at(0)}","data":{"t":1}}`,
      `{"ts":"2025-01-01T00:00:01+20:00","data":{"t":2}}`,
      `{"ts":"${at(2)}","data":{"t":3}}`,
    ]);
    await postRaw(
      p,
      JSON.stringify({ device_external_id: 'poisoned', events: [{ ts: at(3), data: { t: 4 } }] }),
    ).expect(202);
    await idle();

    expect(await stored(deviceId)).toEqual([
      { ts: at(0), data: { t: 1 } },
      { ts: at(2), data: { t: 3 } },
      { ts: at(3), data: { t: 4 } },
    ]);
    const rejected = await http()
      .get(`/projects/${p.projectId}/rejected-readings`)
      .set(p.headers)
      .expect(200);
    expect(rejected.body).toEqual({
      items: [
        {
          id: expect.any(String),
          device_id: deviceId,
          batch_id: batchId,
          scope: 'reading',
          index: 1,
          ts: '2025-01-01T00:00:01+20:00',
          reading: { ts: '2025-01-01T00:00:01+20:00', data: { t: 2 } },
          payload_excerpt: null,
          reason: expect.stringMatching(/time zone displacement out of range/),
          code: '22009',
          created_at: expect.any(String),
        },
      ],
      next_cursor: null,
    });
    // Filters, and another project sees none of it.
    const byBatch = await http()
      .get(`/projects/${p.projectId}/rejected-readings`)
      .query({ batch_id: randomUUID() })
      .set(p.headers)
      .expect(200);
    expect(byBatch.body.items).toEqual([]);
    const other = await api.tenants.newProject();
    await http().get(`/projects/${p.projectId}/rejected-readings`).set(other.headers).expect(404);
    expect(await ingest.getJobs(['failed'])).toEqual(
      expect.not.arrayContaining([
        expect.objectContaining({ data: expect.objectContaining({ deviceId }) }),
      ]),
    );
    const metrics = (await worker.app.get(MetricsService).render()).body;
    expect(metrics).toMatch(/telemetry_rejected_readings_total\{sqlstate="22009"\} [1-9]/);
  });

  it('a stored value float8 cannot hold does not stop evaluation of the device', async () => {
    const p = await api.tenants.newProject();
    await hotRule(p);
    const deviceId = await newDevice(p, 'tiny');
    await inject(p, deviceId, [`{"ts":"${at(0)}","data":{"t":${tiny}}}`]);
    await idle();
    await postRaw(
      p,
      JSON.stringify({ device_external_id: 'tiny', events: [{ ts: at(1), data: { t: 99 } }] }),
    ).expect(202);
    await idle();
    await expectOneOpenAlertAt(p, at(1));
    const [device] = await db.query(`SELECT evaluated_until FROM devices WHERE id = $1`, [
      deviceId,
    ]);
    expect(device.evaluated_until.toISOString()).toBe(at(1));
  });

  it('stores a ts whose offset PostgreSQL refuses (+20:00) as the same instant, and the next batch too', async () => {
    const p = await api.tenants.newProject();
    await postRaw(
      p,
      '{"device_external_id":"far-east","events":[{"ts":"2025-01-01T00:00:00.123456+20:00","data":{"t":1}}]}',
    ).expect(202);
    await postRaw(
      p,
      JSON.stringify({ device_external_id: 'far-east', events: [{ ts: at(0), data: { t: 2 } }] }),
    ).expect(202);
    await idle();
    const id = (await deviceIdOf(db, p.projectId, 'far-east'))!;
    expect(await stored(id)).toEqual([
      { ts: '2024-12-31T04:00:00.123Z', data: { t: 1 } },
      { ts: at(0), data: { t: 2 } },
    ]);
    const rejected = await http()
      .get(`/projects/${p.projectId}/rejected-readings`)
      .set(p.headers)
      .expect(200);
    expect(rejected.body.items).toEqual([]);
  });

  it('reads a number below what a double holds as 0, as validated, and keeps evaluating', async () => {
    const p = await api.tenants.newProject();
    await hotRule(p);
    await postRaw(
      p,
      `{"device_external_id":"tiny-api","events":[{"ts":"${at(0)}","data":{"t":${tiny}}}]}`,
    ).expect(202);
    await postRaw(
      p,
      JSON.stringify({ device_external_id: 'tiny-api', events: [{ ts: at(1), data: { t: 99 } }] }),
    ).expect(202);
    await idle();
    const id = (await deviceIdOf(db, p.projectId, 'tiny-api'))!;
    expect(await stored(id)).toEqual([
      { ts: at(0), data: { t: 0 } },
      { ts: at(1), data: { t: 99 } },
    ]);
    await expectOneOpenAlertAt(p, at(1));
  });
});
