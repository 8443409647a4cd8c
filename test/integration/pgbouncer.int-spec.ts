import { buildDataSourceOptions, migrations, runMigrations } from '@app/database';
import { EvaluationService } from '@app/rules';
import { dropDatabase, isolatedRun, IsolatedRun, sideDatabaseUrl, testRunEnv } from '@app/testing';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { deviceIdOf, rule, send, until } from '../support/fixtures';
import { PgBouncer } from '../support/pgbouncer';
import { runPipelineScenario } from '../support/pipeline-scenario';
import { closeInOrder } from '../support/shutdown';
import { TestReceiver } from '../support/subscriber';
import { Pipeline, RunningWorker, startWorker } from '../support/worker';

/**
 * The api, the worker and migrations through a real PgBouncer in transaction mode
 * (DATABASE_POOLER=transaction): every queue of the pipeline, the device lock on the
 * evaluation paths (in the storing transaction and from the queue, under contention), and
 * concurrent migrations, whose advisory lock must not outlive them on a pooled server
 * connection.
 */
describe('through PgBouncer in transaction mode (integration)', () => {
  jest.setTimeout(90000);

  let bouncer: PgBouncer;
  let own: IsolatedRun;
  let direct: DataSource;

  beforeAll(async () => {
    bouncer = await PgBouncer.start(testRunEnv().databaseUrl);
    own = await isolatedRun('pgbouncer');
    direct = new DataSource(
      buildDataSourceOptions({ url: String(own.env.DATABASE_URL), poolSize: 2 }, 'pgb-check'),
    );
    await direct.initialize();
  });
  afterAll(() =>
    closeInOrder([
      ['direct', () => direct?.destroy()],
      ['database', () => own?.drop()],
      ['pgbouncer', () => bouncer?.stop()],
    ]),
  );

  const pooledEnv = () => ({
    ...own.env,
    DATABASE_URL: bouncer.through(String(own.env.DATABASE_URL)),
    DATABASE_POOLER: 'transaction',
  });

  it('refuses a connection that carries session settings (what the pooler setting avoids)', async () => {
    const ds = new DataSource(
      buildDataSourceOptions(
        { url: bouncer.through(String(own.env.DATABASE_URL)), poolSize: 1 },
        'pgb-session',
      ),
    );
    await expect(ds.initialize()).rejects.toThrow(/unsupported startup parameter/);
    const pooled = new DataSource(
      buildDataSourceOptions(
        {
          url: bouncer.through(String(own.env.DATABASE_URL)),
          poolSize: 1,
          pooler: 'transaction',
        },
        'pgb-pooled',
      ),
    );
    await pooled.initialize();
    expect(await pooled.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await pooled.destroy();
  });

  it('migrates a new database from three processes at once, each migration once, no lock left behind', async () => {
    const url = sideDatabaseUrl('pgb_fresh');
    const pooledUrl = bouncer.through(url);
    try {
      const runs = await Promise.all(
        [0, 1, 2].map(() =>
          runMigrations({ url: pooledUrl, poolSize: 2, pooler: 'transaction' }).catch(
            (err: Error) => err,
          ),
        ),
      );
      // Creating the database may race (one wins, the others find it): no run fails.
      expect(runs.filter((r) => r instanceof Error)).toEqual([]);
      const applied = runs.flatMap((r) => (r as { applied: string[] }).applied);
      expect(applied.sort()).toEqual(migrations.map((m) => m.name).sort());
      const locks = await direct.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`,
      );
      expect(locks).toEqual([{ n: 0 }]);
    } finally {
      await dropDatabase(url);
    }
  });

  describe('the pipeline', () => {
    let api: RunningApi;
    let worker: RunningWorker;
    let receiver: TestReceiver;
    let pipeline: Pipeline;

    beforeAll(async () => {
      api = await startApi(pooledEnv());
      worker = await startWorker(pooledEnv());
      receiver = await new TestReceiver().start();
      pipeline = new Pipeline(own.env);
    });
    afterAll(() =>
      closeInOrder([
        ['pipeline', () => pipeline?.close()],
        ['worker', () => worker?.close()],
        ['api', () => api?.close()],
        ['receiver', () => receiver?.close()],
      ]),
    );

    it('stores, evaluates (both ways), opens, acknowledges and delivers signed webhooks', async () => {
      await runPipelineScenario({ api, worker, pipeline, receiver, direct, device: 'pg' });
    });

    it('lets one of four evaluators in at a time through the pooler', async () => {
      const p = await api.tenants.newProject();
      await rule(api, p).expect(201);
      await send(api, p, 'race', [1], { metric: 't' });
      await pipeline.idle();
      const deviceId = (await deviceIdOf(direct, p.projectId, 'race'))!;
      // Ten bursts stored behind the evaluator's back: 3 hot, 7 cold each.
      await direct.query(
        `INSERT INTO telemetry (device_id, ts, data)
         SELECT $1, now() + i * interval '1 second', jsonb_build_object('t', CASE WHEN i % 10 < 3 THEN 9 ELSE 1 END)
           FROM generate_series(0, 99) i`,
        [deviceId],
      );
      const evaluation = worker.app.get(EvaluationService);
      const drain = async () => {
        for (;;) if (!(await evaluation.evaluateDevice(deviceId)).busy) return;
      };
      await Promise.all([drain(), drain(), drain(), drain()]);
      await until(
        'ten alerts',
        async () =>
          (
            await direct.query(`SELECT count(*)::int AS n FROM alerts WHERE device_id = $1`, [
              deviceId,
            ])
          )[0].n as number,
        { done: (n) => n === 10 },
      );
      const [{ n }] = await direct.query(
        `SELECT count(*)::int AS n FROM alert_events e JOIN alerts a ON a.id = e.alert_id
          WHERE a.device_id = $1 AND e.type = 'alert.created'`,
        [deviceId],
      );
      expect(n).toBe(10);
    });
  });
});
