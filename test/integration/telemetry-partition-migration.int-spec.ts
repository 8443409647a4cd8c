import { buildDataSourceOptions, ensureDatabase, migrations, runMigrations } from '@app/database';
import { DAY_MS, PartitionMaintenance, partitionName } from '@app/telemetry';
import { dropDatabase, sideDatabaseUrl, testRunEnv } from '@app/testing';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send, T0 } from '../support/fixtures';
import { closeInOrder } from '../support/shutdown';
import { Pipeline, RunningWorker, startWorker } from '../support/worker';

/** Readings of device `a` before the migration: cold but for two hot ones (one alert). */
const OLD_READINGS = 20000;

/**
 * Migration 1764330000000 partitions a `telemetry` that already holds readings, online:
 * the table becomes the partition of every time before a boundary a week ahead, without
 * copying a row or rebuilding its key, while inserts go on. Reads, cursor walks, the
 * aggregate and rule evaluation then work across it and the partitions the duty creates.
 */
describe('migration: telemetry partitioned in place (integration)', () => {
  const url = sideDatabaseUrl('partition_migration');
  const env = {
    DATABASE_URL: url,
    REDIS_PREFIX: `${testRunEnv().redisPrefix}:partition_migration`,
    TELEMETRY_PARTITION_INTERVAL: 'month',
  };
  let c: Client;
  let api: RunningApi;
  let worker: RunningWorker;
  let pipeline: Pipeline;

  afterAll(() =>
    closeInOrder([
      ['pipeline', () => pipeline?.close()],
      ['worker', () => worker?.close()],
      ['api', () => api?.close()],
      ['client', () => c?.end()],
      ['database', () => dropDatabase(url)],
    ]),
  );

  it('converts a populated table while rows arrive; everything reads and evaluates across partitions', async () => {
    const before = migrations.findIndex((m) => m.name === 'TelemetryPartitions1764330000000');
    expect(before).toBeGreaterThan(0);
    await ensureDatabase(url);
    const old = new DataSource({
      ...buildDataSourceOptions({ url, poolSize: 2 }, 'partition-migration-test'),
      migrations: migrations.slice(0, before),
    });
    await old.initialize();
    await old.runMigrations({ transaction: 'each' });
    await old.destroy();

    c = new Client({ connectionString: url });
    await c.connect();
    const one = async (sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows[0];
    const { id: orgId } = await one(`INSERT INTO orgs (name) VALUES ('org') RETURNING id`);
    const { id: projectId } = await one(
      `INSERT INTO projects (org_id, name) VALUES ($1, 'p') RETURNING id`,
      [orgId],
    );
    const device = async (externalId: string): Promise<string> =>
      (
        await one(`INSERT INTO devices (project_id, external_id) VALUES ($1, $2) RETURNING id`, [
          projectId,
          externalId,
        ])
      ).id;
    const a = await device('a');
    const b = await device('b');
    await c.query(
      `INSERT INTO telemetry (device_id, ts, data)
       SELECT $1, to_timestamp($2::float8 / 1000) + i * interval '1 second',
              jsonb_build_object('t', CASE WHEN i IN (15000, 15001) THEN 9 ELSE 1 END)
         FROM generate_series(0, $3::int - 1) i`,
      [a, T0, OLD_READINGS],
    );
    const soon = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * DAY_MS);
    await c.query(`INSERT INTO telemetry VALUES ($1, $2, '{"t": 1}')`, [b, soon]);

    // A reading past the boundary (a device clock far ahead): refused before anything changes.
    const farAhead = new Date(Date.now() + 30 * DAY_MS);
    await c.query(`INSERT INTO telemetry VALUES ($1, $2, '{"t": 1}')`, [b, farAhead]);
    await expect(runMigrations({ url, poolSize: 2 })).rejects.toThrow(
      /telemetry holds readings at or after \S+ \(the newest at \S+\): they cannot stay in the partition of the past/,
    );
    const table = async () =>
      one(
        `SELECT c.oid::int AS oid, c.relkind AS kind,
                (SELECT conindid::int FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p') AS key,
                (SELECT count(*)::int FROM pg_constraint WHERE conrelid = c.oid AND contype = 'c') AS checks
           FROM pg_class c WHERE c.oid = 'telemetry'::regclass`,
      );
    const unpartitioned = await table();
    expect(unpartitioned).toMatchObject({ kind: 'r', checks: 0 });
    await c.query(`DELETE FROM telemetry WHERE ts = $1`, [farAhead]);

    // Online: inserts go on throughout.
    const writer = new Client({ connectionString: url });
    await writer.connect();
    let writing = true;
    let written = 0;
    const writes = (async () => {
      while (writing) {
        await writer.query(`INSERT INTO telemetry VALUES ($1, $2, '{"t": 1}')`, [
          b,
          new Date(T0 - ++written * 1000),
        ]);
      }
    })();
    const result = await runMigrations({ url, poolSize: 2 });
    writing = false;
    await writes;
    await writer.end();
    expect(result.applied).toEqual(migrations.slice(before).map((m) => m.name));
    expect(result.applied.slice(0, 2)).toEqual([
      'TelemetryPartitions1764330000000',
      'ProjectRetention1764340000000',
    ]);
    expect(written).toBeGreaterThan(0);

    // The old table is the partition, as it was: same relation, same key index, no CHECK left.
    const [history] = (
      await c.query(
        `SELECT c.relname AS name, c.oid::int AS oid, pg_get_expr(c.relpartbound, c.oid) AS bound,
                (SELECT conindid::int FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p') AS key,
                (SELECT count(*)::int FROM pg_constraint WHERE conrelid = c.oid AND contype = 'c') AS checks
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'telemetry'::regclass`,
      )
    ).rows;
    const boundary = Math.floor(Date.now() / DAY_MS) * DAY_MS + 8 * DAY_MS;
    expect(history).toEqual({
      name: partitionName(null, new Date(boundary)),
      oid: unpartitioned.oid,
      key: unpartitioned.key,
      checks: 0,
      bound: expect.stringMatching(/^FOR VALUES FROM \(MINVALUE\) TO \('.+'\)$/),
    });
    expect((await table()).kind).toBe('p');
    expect((await one(`SELECT count(*)::int AS n FROM telemetry`)).n).toBe(
      OLD_READINGS + 1 + written,
    );

    // The duty, a day past the boundary: monthly partitions from it on, taking new rows.
    api = await startApi(env);
    worker = await startWorker(env);
    pipeline = new Pipeline(env);
    const { created } = await worker.app
      .get(PartitionMaintenance)
      .runOnce(new Date(boundary + DAY_MS));
    expect(created[0]).toBe(partitionName(new Date(boundary), new Date(boundary)));
    const next = clock(boundary + 3600000);
    for (const [i, t] of [9, 9, 1, 1].entries())
      await c.query(`INSERT INTO telemetry VALUES ($1, $2, $3)`, [a, next(i), { t }]);
    const partitionOf = async (ts: string) =>
      (
        await one(
          `SELECT tableoid::regclass::text AS p FROM telemetry WHERE device_id = $1 AND ts = $2`,
          [a, ts],
        )
      ).p;
    expect(await partitionOf(next(0))).toBe(created[0]);

    // Evaluation reads the device's readings in ts order, across partitions.
    const key = await api.tenants.newKey(projectId);
    const p = { projectId, headers: { 'X-API-Key': key.key } };
    await rule(api, p, { window_n: 3, required_k: 2 }).expect(201);
    const now = clock(Math.floor(Date.now() / 1000) * 1000);
    await send(api, p, 'a', [1], { metric: 't', at: now });
    await pipeline.idle(2);
    const alerts = (
      await c.query(
        `SELECT triggered_at, resolved_at FROM alerts WHERE device_id = $1 ORDER BY triggered_at`,
        [a],
      )
    ).rows.map((r) => [r.triggered_at.toISOString(), r.resolved_at?.toISOString()]);
    const old0 = clock(T0);
    expect(alerts).toEqual([
      [old0(15001), old0(15003)],
      [next(1), next(3)],
    ]);
    expect(await partitionOf(now(0))).toBe(history.name);

    // A cursor walk, newest first, returns every reading once across partitions.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(api.server)
        .get(`/telemetry/devices/${a}/telemetry`)
        .query({ limit: 1000, ...(cursor && { cursor }) })
        .set(p.headers)
        .expect(200);
      seen.push(...page.body.items.map((r: { ts: string }) => r.ts));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(OLD_READINGS + 5);
    expect(seen.slice(0, 6)).toEqual([
      next(3),
      next(2),
      next(1),
      next(0),
      now(0),
      old0(OLD_READINGS - 1),
    ]);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort().reverse()).toEqual(seen);

    const aggregate = await request(api.server)
      .get(`/telemetry/devices/${a}/telemetry/aggregate`)
      .query({
        metric: 't',
        agg: 'sum',
        bucket_seconds: 86400,
        from: new Date(Date.parse(now(0)) - 3600000).toISOString(),
        to: new Date(boundary + DAY_MS).toISOString(),
      })
      .set(p.headers)
      .expect(200);
    expect(aggregate.body.items.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(
      5,
    );
    expect(aggregate.body.items.reduce((n: number, b: { value: number }) => n + b.value, 0)).toBe(
      21,
    );
  }, 120000);
  it('leaves the table as it was, without its CHECK, when it gives up part way', async () => {
    const side = sideDatabaseUrl('partition_migration_cut');
    try {
      const before = migrations.findIndex((m) => m.name === 'TelemetryPartitions1764330000000');
      await ensureDatabase(side);
      const old = new DataSource({
        ...buildDataSourceOptions({ url: side, poolSize: 2 }, 'partition-migration-cut'),
        migrations: migrations.slice(0, before),
      });
      await old.initialize();
      await old.runMigrations({ transaction: 'each' });
      // Enough rows that reading them all (VALIDATE, step 2) outlasts the statement timeout.
      await old.query(
        `INSERT INTO telemetry (device_id, ts, data)
         SELECT '00000000-0000-4000-8000-00000000000c', to_timestamp(1735689600) + i * interval '1 second', '{}'
           FROM generate_series(1, 2000000) i`,
      );
      await expect(
        runMigrations({ url: side, poolSize: 2, statementTimeoutMs: 50 }),
      ).rejects.toThrow(/statement timeout/);
      const [state] = await old.query(
        `SELECT c.relkind AS kind,
                (SELECT count(*)::int FROM pg_constraint WHERE conrelid = c.oid AND contype = 'c') AS checks
           FROM pg_class c WHERE c.oid = 'telemetry'::regclass`,
      );
      expect(state).toEqual({ kind: 'r', checks: 0 });
      await old.destroy();
    } finally {
      await dropDatabase(side);
    }
  }, 120000);
});
