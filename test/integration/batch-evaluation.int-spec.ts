import { DeviceAlertLock } from '@app/alerts';
import { EvaluationService } from '@app/rules';
import { isolatedRun, IsolatedRun, TestProject } from '@app/testing';
import { DeviceProgressRepository } from '@app/tenancy';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { at, deviceIdOf, rule, send, T0, until } from '../support/fixtures';
import { closeInOrder } from '../support/shutdown';
import { drained, Pipeline, RunningWorker, startWorker } from '../support/worker';

/**
 * A batch is stored and evaluated in one transaction, from the rows its INSERT returns,
 * whenever the device has nothing older waiting for evaluation and no other evaluator holds
 * it; otherwise it gets a `rule-evaluation` job as before. The evaluation queue is paused
 * in each test, so an alert that opens was opened by the storing transaction, and one that
 * waits for the queue opens only once it is resumed.
 */
describe('evaluating a batch where it is stored (integration)', () => {
  let own: IsolatedRun;
  let api: RunningApi;
  let worker: RunningWorker;
  let pipeline: Pipeline;
  let db: DataSource;

  beforeAll(async () => {
    own = await isolatedRun('batch_eval');
    api = await startApi(own.env);
    worker = await startWorker(own.env);
    pipeline = new Pipeline(own.env);
    db = api.app.get(DataSource);
  });
  beforeEach(() => pipeline.evaluation.pause());
  afterEach(() => pipeline.evaluation.resume());
  afterAll(() =>
    closeInOrder([
      ['pipeline', () => pipeline?.close()],
      ['worker', () => worker?.close()],
      ['api', () => api?.close()],
      ['database', () => own?.drop()],
    ]),
  );

  async function projectWithHotRule(): Promise<TestProject> {
    const p = await api.tenants.newProject();
    await rule(api, p).expect(201);
    return p;
  }

  const alertsOf = async (deviceId: string): Promise<string[]> =>
    (
      await db.query(`SELECT triggered_at FROM alerts WHERE device_id = $1 ORDER BY triggered_at`, [
        deviceId,
      ])
    ).map((r: { triggered_at: Date }) => r.triggered_at.toISOString());

  const evaluationJobs = () =>
    pipeline.evaluation.getJobCounts('waiting', 'delayed', 'active', 'prioritized');

  it('opens the alert in the transaction that stores the batch, with no evaluation job', async () => {
    const p = await projectWithHotRule();
    await send(api, p, 'a', [1, 9, 9, 2], { metric: 't' });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'a'))!;
    expect(await alertsOf(deviceId)).toEqual([at(1)]);
    const [device] = await db.query(`SELECT evaluated_until FROM devices WHERE id = $1`, [
      deviceId,
    ]);
    expect(device.evaluated_until.toISOString()).toBe(at(3));
    expect(Object.values(await evaluationJobs()).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("takes a device's next batch as next from what this process committed, without asking PostgreSQL", async () => {
    const p = await projectWithHotRule();
    const progress = worker.app.get(DeviceProgressRepository);
    const read = jest.spyOn(progress, 'appliedSeq');
    try {
      await send(api, p, 'n', [1], { metric: 't' });
      await drained(pipeline.ingest);
      expect(read).toHaveBeenCalledTimes(1); // the device's first batch here: asked
      for (const start of [1, 2]) {
        await send(api, p, 'n', [9], { metric: 't', start });
        await drained(pipeline.ingest);
      }
      expect(read).toHaveBeenCalledTimes(1);
    } finally {
      read.mockRestore();
    }
    const deviceId = (await deviceIdOf(db, p.projectId, 'n'))!;
    expect(await alertsOf(deviceId)).toEqual([at(1)]);
  });

  it('evaluates only what is after the cursor: late readings in the batch are stored, not evaluated', async () => {
    const p = await projectWithHotRule();
    await send(api, p, 'b', [1, 1], { metric: 't', start: 10 });
    await drained(pipeline.ingest);
    // A hot reading before the cursor (late), then a cold and a hot one after it.
    await send(api, p, 'b', [9], { metric: 't', start: 5 });
    await send(api, p, 'b', [1, 9], { metric: 't', start: 12 });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'b'))!;
    expect(await alertsOf(deviceId)).toEqual([at(13)]);
  });

  it('leaves the batch to the queue when older readings wait for evaluation, which then evaluates all in ts order', async () => {
    const p = await projectWithHotRule();
    await send(api, p, 'c', [1], { metric: 't', start: 0 });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'c'))!;
    // Readings stored but not evaluated (as after a batch whose evaluation was queued).
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{"t": 7}'), ($1, $3, '{"t": 1}')`,
      [deviceId, at(1), at(2)],
    );
    await send(api, p, 'c', [9], { metric: 't', start: 3 });
    await drained(pipeline.ingest);
    expect(await alertsOf(deviceId)).toEqual([]);
    expect((await evaluationJobs()).waiting).toBe(1);

    await pipeline.evaluation.resume();
    // In ts order: the stored-earlier hot reading at 1 opens one, the cold one at 2
    // resolves it, and the batch's hot reading at 3 opens the next.
    await until('the queued evaluation', () => alertsOf(deviceId), {
      done: (a) => a.length > 1,
    });
    expect(await alertsOf(deviceId)).toEqual([at(1), at(3)]);
  });

  it('leaves the batch to the queue while another transaction holds the device', async () => {
    const p = await projectWithHotRule();
    await send(api, p, 'd', [1], { metric: 't' });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'd'))!;
    const lock = worker.app.get(DeviceAlertLock);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    const holder = db.transaction(async (em) => {
      await lock.take(em, deviceId);
      held();
      await released;
    });
    await isHeld;
    await send(api, p, 'd', [9], { metric: 't', start: 1 });
    await drained(pipeline.ingest);
    expect(await alertsOf(deviceId)).toEqual([]);
    release();
    await holder;

    await pipeline.evaluation.resume();
    await until('the queued evaluation', () => alertsOf(deviceId), {
      done: (a) => a.length > 0,
    });
    expect(await alertsOf(deviceId)).toEqual([new Date(T0 + 1000).toISOString()]);
  });

  it('waits for a batch being stored: a reading it adds before what the evaluation reads is evaluated, not passed over', async () => {
    const p = await projectWithHotRule();
    await send(api, p, 'f', [1], { metric: 't' });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'f'))!;
    // Stored, not yet evaluated: cold readings at 2 and 3.
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{"t": 1}'), ($1, $3, '{"t": 1}')`,
      [deviceId, at(2), at(3)],
    );
    // A batch being stored (the device row locked, as ingest does) adds a hot reading at 1.
    let commit!: () => void;
    let inserted!: () => void;
    const isInserted = new Promise<void>((r) => (inserted = r));
    const storing = db.transaction(async (em) => {
      await em.query(`SELECT 1 FROM devices WHERE id = $1 FOR UPDATE`, [deviceId]);
      await em.query(`INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{"t": 9}')`, [
        deviceId,
        at(1),
      ]);
      inserted();
      await new Promise<void>((r) => (commit = r));
    });
    await isInserted;
    const evaluating = worker.app.get(EvaluationService).evaluateDevice(deviceId);
    await new Promise((r) => setTimeout(r, 300));
    commit();
    await storing;
    await evaluating;
    expect(await alertsOf(deviceId)).toEqual([at(1)]);
  });

  it('updates the device row under the transaction that locked it: no multixact per batch', async () => {
    // Updated under another transaction id (a savepoint's subtransaction left open), the
    // row locked FOR UPDATE gets a multixact as its xmax: one per batch, on the hottest row.
    await db.query('CREATE EXTENSION IF NOT EXISTS pageinspect');
    const p = await projectWithHotRule();
    for (const start of [0, 1]) {
      await send(api, p, 'mx', [1, 9], { metric: 't', start: start * 2 });
      await drained(pipeline.ingest);
    }
    const deviceId = (await deviceIdOf(db, p.projectId, 'mx'))!;
    const [{ page }] = await db.query(
      `SELECT (ctid::text::point)[0]::int AS page FROM devices WHERE id = $1`,
      [deviceId],
    );
    const multi = await db.query(
      `SELECT lp FROM heap_page_items(get_raw_page('devices', $1))
        WHERE t_infomask & 4096 <> 0`, // HEAP_XMAX_IS_MULTI
      [page],
    );
    expect(multi).toEqual([]);
  });
});
