import { MetricsService } from '@app/observability';
import {
  DAY_MS,
  PartitionMaintenance,
  partitionName,
  RETENTION_BATCH,
  TelemetryPartitionsRepository,
} from '@app/telemetry';
import { adminHeaders, isolatedRun, IsolatedRun, TestProject } from '@app/testing';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { at, clock, deviceIdOf, rule, send, storedCount, T0, until } from '../support/fixtures';
import { closeInOrder } from '../support/shutdown';
import { drained, Pipeline, RunningWorker, startWorker } from '../support/worker';

/**
 * `telemetry` partitioned by `ts` (docs/operations.md, "Partitions and retention"), on a
 * database of this suite's own with daily partitions and a 30-day retention. The migration
 * leaves one partition of every time before a boundary 8 days ahead; the maintenance duty
 * is run with its clock moved on (later tests move it further, so they run in this order).
 */
describe('telemetry partitions and retention (integration)', () => {
  let own: IsolatedRun;
  let api: RunningApi;
  let worker: RunningWorker;
  let pipeline: Pipeline;
  let db: DataSource;
  let partitions: TelemetryPartitionsRepository;
  let maintenance: PartitionMaintenance;
  /** Where the migration's partition of the past ends. */
  let boundary: number;

  beforeAll(async () => {
    own = await isolatedRun('partitions');
    const env = { ...own.env, TELEMETRY_PARTITION_INTERVAL: 'day', TELEMETRY_RETENTION_DAYS: '30' };
    api = await startApi(env);
    worker = await startWorker(env);
    pipeline = new Pipeline(env);
    db = api.app.get(DataSource);
    partitions = worker.app.get(TelemetryPartitionsRepository);
    maintenance = worker.app.get(PartitionMaintenance);
    const [past] = await partitions.list();
    boundary = past.to!.getTime();
  });
  afterAll(() =>
    closeInOrder([
      ['pipeline', () => pipeline?.close()],
      ['worker', () => worker?.close()],
      ['api', () => api?.close()],
      ['database', () => own?.drop()],
    ]),
  );

  const day = (n: number, hours = 0) => new Date(boundary + n * DAY_MS + hours * 3600000);
  const insert = (deviceId: string, ts: Date) =>
    db.query(`INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{"t": 1}')`, [
      deviceId,
      ts,
    ]);
  const partitionOf = async (deviceId: string, ts: Date): Promise<string | undefined> =>
    (
      await db.query(
        `SELECT tableoid::regclass::text AS p FROM telemetry WHERE device_id = $1 AND ts = $2`,
        [deviceId, ts],
      )
    )[0]?.p;
  const names = async () => (await partitions.list()).map((p) => p.name);
  const gauge = async (name: string) =>
    (await worker.app.get(MetricsService).registry.getSingleMetric(name)!.get()).values[0]?.value;

  it('takes readings of any past time and a day ahead from the migration on; later ones are a 422', async () => {
    expect(await partitions.list()).toEqual([
      {
        name: partitionName(null, new Date(boundary)),
        from: null,
        to: expect.any(Date),
        detachPending: false,
      },
    ]);
    expect(boundary).toBeGreaterThanOrEqual(Date.now() + 7 * DAY_MS);
    // The ingest worker ran the duty at boot: nothing to add, a week ahead covered.
    await until('the boot run', () => gauge('telemetry_partitions_ahead_seconds'), {
      done: (s) => (s ?? 0) > 6 * 86400,
    });

    const p = await api.tenants.newProject();
    const soon = new Date(Math.floor(Date.now() / 1000) * 1000 + 23 * 3600000);
    await send(api, p, 'clock', [1]);
    await send(api, p, 'clock', [2], { at: () => soon.toISOString() });
    await drained(pipeline.ingest);
    const deviceId = (await deviceIdOf(db, p.projectId, 'clock'))!;
    expect(await partitionOf(deviceId, new Date(T0))).toBe(partitionName(null, new Date(boundary)));
    expect(await partitionOf(deviceId, soon)).toBe(partitionName(null, new Date(boundary)));

    const tooLate = new Date(Date.now() + 25 * 3600000).toISOString();
    const res = await request(api.server)
      .post('/telemetry')
      .set(p.headers)
      .send({
        device_external_id: 'clock',
        events: [
          { ts: at(5), data: {} },
          { ts: tooLate, data: {} },
        ],
      })
      .expect(422);
    expect(res.body.details).toEqual([
      {
        field: 'events.1.ts',
        message: expect.stringMatching(
          /^ts is more than 24 hours ahead of the server's clock: readings up to \S+Z are accepted$/,
        ),
      },
    ]);
  });

  it("deletes a project's readings past its retention_days in batches, and nobody else's; its alerts carry on", async () => {
    const short = await api.tenants.newProject();
    const other = await api.tenants.newProject();
    await request(api.server)
      .patch(`/projects/${short.projectId}`)
      .set(adminHeaders)
      .send({ retention_days: 5 })
      .expect(200);
    // 2 of the last 3 above 5: open from the second reading on.
    await rule(api, short, { window_n: 3, required_k: 2 }).expect(201);
    const old = 2 * RETENTION_BATCH + 2000;
    for (let start = 0; start < old; start += 4000)
      await send(api, short, 'old', Array(Math.min(4000, old - start)).fill(9), {
        metric: 't',
        start,
      });
    const recent = clock(Math.floor(Date.now() / 1000) * 1000 - 2 * DAY_MS);
    await send(api, short, 'recent', [1, 2, 3], { metric: 't', at: recent });
    await send(api, other, 'old', [1, 2, 3], { metric: 't' });
    await pipeline.idle();
    const [shortOld, shortRecent, otherOld] = await Promise.all(
      [
        [short, 'old'],
        [short, 'recent'],
        [other, 'old'],
      ].map(([p, d]) => deviceIdOf(db, (p as TestProject).projectId, d as string)),
    );
    const alertOf = async () =>
      (
        await db.query(`SELECT status, resolved_at FROM alerts WHERE device_id = $1`, [shortOld])
      )[0] as { status: string; resolved_at: Date | null };
    expect((await alertOf()).status).toBe('open');

    const deletes = jest.spyOn(partitions, 'deleteOlder');
    try {
      expect(await maintenance.runOnce()).toEqual({ created: [], dropped: [], deleted: old });
      const batches = await Promise.all(deletes.mock.results.map((r) => r.value));
      expect(batches).toEqual([RETENTION_BATCH, RETENTION_BATCH, 2000]);
    } finally {
      deletes.mockRestore();
    }
    expect(await storedCount(db, shortOld!)).toBe(0);
    expect(await storedCount(db, shortRecent!)).toBe(3);
    expect(await storedCount(db, otherOld!)).toBe(3);

    // The rule's window is its own state, not the readings: two cold ones now leave 1 of 3.
    const now = clock(Math.floor(Date.now() / 1000) * 1000 - 60000);
    await send(api, short, 'old', [1, 1], { metric: 't', at: now });
    await pipeline.idle();
    expect(await alertOf()).toEqual({ status: 'resolved', resolved_at: new Date(now(1)) });
    const page = await request(api.server)
      .get(`/telemetry/devices/${shortOld}/telemetry`)
      .set(short.headers)
      .expect(200);
    expect(page.body.items.map((r: { ts: string }) => r.ts)).toEqual([now(1), now(0)]);
    // The next tests move the clock on: this project would lose everything.
    await request(api.server)
      .patch(`/projects/${short.projectId}`)
      .set(adminHeaders)
      .send({ retention_days: null })
      .expect(200);
  });

  it('creates partitions of the configured width a week ahead, where new readings go', async () => {
    const result = await maintenance.runOnce(day(3));
    const expected = Array.from({ length: 10 }, (_, i) => partitionName(day(i), day(i + 1)));
    expect(result).toEqual({ created: expected, dropped: [], deleted: 0 });
    expect(await names()).toEqual([partitionName(null, new Date(boundary)), ...expected]);
    expect(await maintenance.runOnce(day(3))).toEqual({ created: [], dropped: [], deleted: 0 });
    expect(await gauge('telemetry_partitions')).toBe(11);

    const device = '00000000-0000-4000-8000-000000000001';
    await insert(device, day(0, 1));
    await insert(device, day(9, 23));
    expect(await partitionOf(device, day(0, 1))).toBe(expected[0]);
    expect(await partitionOf(device, day(9, 23))).toBe(expected[9]);
  });

  it('drops partitions past the retention without holding back ingest while it waits for readers', async () => {
    const device = '00000000-0000-4000-8000-000000000002';
    await insert(device, day(9, 1));
    // An insert still open: the detach waits for it, and lets other inserts through meanwhile.
    const open = new Client({ connectionString: String(own.env.DATABASE_URL) });
    await open.connect();
    try {
      await open.query('BEGIN');
      await open.query(`INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{}')`, [
        device,
        day(9, 2),
      ]);
      // Kept: since day 9.5, so the partition of day 9 stays and every older one goes.
      const running = maintenance.runOnce(day(39, 12));
      await until(
        'the detach waiting for the open insert',
        async () =>
          (
            await db.query(
              `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE telemetry DETACH%'`,
            )
          ).length,
      );
      await insert(device, day(9, 3));
      expect(await storedCount(db, device)).toBe(2);
      await open.query('COMMIT');
      const result = await running;
      expect(result.dropped).toEqual([
        partitionName(null, new Date(boundary)),
        ...Array.from({ length: 9 }, (_, i) => partitionName(day(i), day(i + 1))),
      ]);
      expect(result.created).toHaveLength(37);
    } finally {
      await open.end();
    }
    expect((await partitions.list())[0]).toMatchObject({ from: day(9), detachPending: false });
    for (const name of [partitionName(null, new Date(boundary)), partitionName(day(0), day(1))])
      expect((await db.query(`SELECT to_regclass($1) AS t`, [name]))[0].t).toBeNull();
    expect(await storedCount(db, device)).toBe(3);
    expect(await storedCount(db, '00000000-0000-4000-8000-000000000001')).toBe(1);
  });

  it('finishes a detach that was cut short before dropping the partition', async () => {
    const name = partitionName(day(9), day(10));
    const blocker = new Client({ connectionString: String(own.env.DATABASE_URL) });
    const detacher = new Client({ connectionString: String(own.env.DATABASE_URL) });
    await Promise.all([blocker.connect(), detacher.connect()]);
    try {
      // The detach's second step waits for the open insert, and is cancelled there.
      await blocker.query('BEGIN');
      await blocker.query(`INSERT INTO telemetry (device_id, ts, data) VALUES ($1, $2, '{}')`, [
        '00000000-0000-4000-8000-000000000003',
        day(20),
      ]);
      const [{ pid }] = (await detacher.query('SELECT pg_backend_pid() AS pid')).rows;
      const detaching = detacher
        .query(`ALTER TABLE telemetry DETACH PARTITION ${name} CONCURRENTLY`)
        .catch((err: Error) => err);
      await until('the detach to wait', async () =>
        (await partitions.list()).some((p) => p.name === name && p.detachPending),
      );
      await db.query('SELECT pg_cancel_backend($1)', [pid]);
      expect(String(await detaching)).toMatch(/canceling statement/);
      await blocker.query('COMMIT');
    } finally {
      await Promise.all([blocker.end(), detacher.end()]);
    }
    expect((await partitions.list()).find((p) => p.name === name)).toMatchObject({
      detachPending: true,
    });
    // Kept: since day 10.5.
    expect((await maintenance.runOnce(day(40, 12))).dropped).toEqual([name]);
    expect(await names()).not.toContain(name);
    expect((await db.query(`SELECT to_regclass($1) AS t`, [name]))[0].t).toBeNull();
  });

  it('sets aside, visibly, readings that no partition takes, and goes on with the device', async () => {
    // The clock of the table is now 40 days on: nothing takes a reading of today any more.
    const p = await api.tenants.newProject();
    const today = clock(Math.floor(Date.now() / 1000) * 1000);
    await send(api, p, 'stale', [1, 2], { metric: 't', at: today });
    await send(api, p, 'stale', [3], { metric: 't', at: today, start: 2 });
    await drained(pipeline.ingest);
    const rejected = await request(api.server)
      .get(`/projects/${p.projectId}/rejected-readings`)
      .set(p.headers)
      .expect(200);
    expect(rejected.body.items).toHaveLength(3);
    for (const r of rejected.body.items)
      expect(r).toMatchObject({
        scope: 'reading',
        code: '23514',
        reason: expect.stringMatching(/no partition/),
      });
  });
  it('goes on with its run when a partition cannot be created, and creates it once it can', async () => {
    const newest = (await partitions.list()).at(-1)!;
    const next = partitionName(newest.to, new Date(newest.to!.getTime() + DAY_MS));
    // A table of the name the duty wants next (a detached partition left behind).
    await db.query(`CREATE TABLE ${next} (LIKE telemetry)`);
    const now = new Date(newest.to!.getTime() - 5 * DAY_MS);
    const blocked = await maintenance.runOnce(now);
    expect(blocked.created).toEqual([]);
    expect(blocked.dropped.length).toBeGreaterThan(0);
    await db.query(`DROP TABLE ${next}`);
    expect((await maintenance.runOnce(now)).created[0]).toBe(next);
  });
});
