import { DeviceAlertLock } from '@app/alerts';
import { EvaluationService } from '@app/rules';
import { DeviceProgressRepository } from '@app/tenancy';
import { testRunEnv } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { rule, T0 } from '../support/fixtures';
import { RunningWorker, startWorker } from '../support/worker';

/**
 * Four evaluators on one device at once: with the advisory lock every opening and
 * resolution happens exactly once; with the lock switched off (negative control) the
 * same run breaks, showing the test can fail.
 */
describe('evaluation under concurrency (integration)', () => {
  let api: RunningApi;
  let worker: RunningWorker;
  let evaluation: EvaluationService;
  let lock: DeviceAlertLock;
  let db: DataSource;
  const EVALUATORS = 4;
  // 10 bursts: 3 hot readings then 7 cold, rule "1 of 1 > 80": 10 openings, 10 resolutions.
  const values = Array.from({ length: 100 }, (_, i) => (i % 10 < 3 ? 90 : 10));

  beforeAll(async () => {
    api = await startApi();
    // Its own queue namespace: this worker's processors must not pick up other tests' jobs.
    worker = await startWorker({ REDIS_PREFIX: `${testRunEnv().redisPrefix}:conc` });
    evaluation = worker.app.get(EvaluationService);
    lock = worker.app.get(DeviceAlertLock);
    db = api.app.get(DataSource);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await worker.close();
    await api.close();
  });

  async function deviceWithReadings(): Promise<{ projectId: string; deviceId: string }> {
    const p = await api.tenants.newProject();
    await rule(api, p, { threshold: 80 }).expect(201);
    const d = await request(api.server)
      .post(`/projects/${p.projectId}/devices`)
      .set(p.headers)
      .send({ external_id: 'c' })
      .expect(201);
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data)
       SELECT $1, to_timestamp(($2::bigint + i * 1000) / 1000.0), jsonb_build_object('t', v)
         FROM unnest($3::float8[]) WITH ORDINALITY AS x(v, i)`,
      [d.body.id, T0, values],
    );
    return { projectId: p.projectId, deviceId: d.body.id };
  }

  async function race(deviceId: string) {
    const results = await Promise.allSettled(
      Array.from({ length: EVALUATORS }, () => evaluation.evaluateDevice(deviceId)),
    );
    const events: Array<{ type: string; n: number }> = await db.query(
      `SELECT e.type, count(*)::int AS n FROM alert_events e JOIN alerts a ON a.id = e.alert_id
        WHERE a.device_id = $1 GROUP BY 1 ORDER BY 1`,
      [deviceId],
    );
    const [{ n: alerts }] = await db.query(
      `SELECT count(*)::int AS n FROM alerts WHERE device_id = $1`,
      [deviceId],
    );
    return {
      rejected: results.filter((r) => r.status === 'rejected').length,
      opened: results.reduce((s, r) => s + (r.status === 'fulfilled' ? r.value.opened : 0), 0),
      resolved: results.reduce((s, r) => s + (r.status === 'fulfilled' ? r.value.resolved : 0), 0),
      events: Object.fromEntries(events.map((e) => [e.type, e.n])),
      alerts: alerts as number,
    };
  }

  it('with the lock, each opening and resolution happens exactly once', async () => {
    for (let round = 0; round < 3; round++) {
      const { deviceId } = await deviceWithReadings();
      const r = await race(deviceId);
      expect(r).toEqual({
        rejected: 0,
        opened: 10,
        resolved: 10,
        events: { 'alert.created': 10, 'alert.resolved': 10 },
        alerts: 10,
      });
      const [{ evaluated_until }] = await db.query(
        `SELECT evaluated_until FROM devices WHERE id = $1`,
        [deviceId],
      );
      expect(evaluated_until.getTime()).toBe(T0 + values.length * 1000);
    }
  });

  it('negative control: without the lock the same race breaks the invariant', async () => {
    // Every evaluator is let in at once, as if there were no lock (neither the device's
    // lock nor its row, which evaluators also take to wait out a batch being stored).
    jest.spyOn(lock, 'tryTake').mockResolvedValue(true);
    const progress = worker.app.get(DeviceProgressRepository);
    const cursor = progress.evaluationCursor.bind(progress);
    jest.spyOn(progress, 'evaluationCursor').mockImplementation((em, id) => cursor(em, id));
    let broken = 0;
    for (let round = 0; round < 5 && broken === 0; round++) {
      const { deviceId } = await deviceWithReadings();
      const r = await race(deviceId);
      // Evaluators that read the same state either collide on the unique index (rejected)
      // or double-report transitions.
      if (
        r.rejected > 0 ||
        r.opened !== 10 ||
        r.resolved !== 10 ||
        r.events['alert.created'] !== 10
      )
        broken++;
    }
    expect(broken).toBeGreaterThan(0);
  });
});
