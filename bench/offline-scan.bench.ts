/**
 * npm run bench:offline — the offline scan against a million devices, in a database of its
 * own (`<database>_offline_bench`, dropped at the end), with the real worker's OfflineScan.
 *
 * One project, BENCH_DEVICES devices (1,000,000) last heard from uniformly over the last
 * 50 minutes, and an ALL-scope offline rule of one hour: no device is offline yet. Passes
 * then run at virtual times (the scan takes `now`) so that a known number of devices
 * crosses the hour between two passes, as a fleet's churn would: 0 (the first pass, and an
 * idle one), ~100 and ~1,000. Each pass's time is reported beside the baseline, a count of
 * the project's devices through the same index (what a scan that looked at every device
 * each pass would read at least), measured in the same run.
 */
import { AppConfig, loadConfig } from '@app/config';
import { ensureDatabase, runMigrations } from '@app/database';
import { OfflineScan } from '@app/rules';
import { NestFactory } from '@nestjs/core';
import { WorkerModule } from '@worker/worker.module';
import { Client } from 'pg';
import { DATABASE_URL, env, int, machine } from './common';

const DEVICES = int('BENCH_DEVICES', 1000000);
const SPREAD_S = 3000;
const AFTER_S = 3600;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await f();
  return [performance.now() - t, r];
}

async function main(): Promise<void> {
  const url = new URL(DATABASE_URL);
  url.pathname = `${url.pathname.slice(1)}_offline_bench`;
  const admin = new Client({ connectionString: DATABASE_URL.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${url.pathname.slice(1)} WITH (FORCE)`);
  await ensureDatabase(url.toString());
  await runMigrations({ url: url.toString(), poolSize: 2 });
  const db = new Client({ connectionString: url.toString() });
  await db.connect();
  const one = async (sql: string, p: unknown[] = []) => (await db.query(sql, p)).rows[0];
  const { id: org } = await one(`INSERT INTO orgs (name) VALUES ('bench') RETURNING id`);
  const { id: project } = await one(
    `INSERT INTO projects (org_id, name) VALUES ($1, 'bench') RETURNING id`,
    [org],
  );
  const t0 = Date.now();
  const [loadMs] = await timed(() =>
    db.query(
      `INSERT INTO devices (project_id, external_id, last_seen_at)
       SELECT $1, 'd' || i, to_timestamp($2::float8 / 1000) - random() * make_interval(secs => $3)
         FROM generate_series(1, $4::int) i`,
      [project, t0, SPREAD_S, DEVICES],
    ),
  );
  await db.query(`VACUUM ANALYZE devices`);
  await db.query(
    `INSERT INTO rules (project_id, name, kind, offline_after_seconds, cooldown_seconds, scope)
     VALUES ($1, 'quiet', 'offline', $2, 0, 'ALL')`,
    [project, AFTER_S],
  );
  console.log(`machine      ${machine()}`);
  console.log(
    `data         ${DEVICES.toLocaleString('en-US')} devices in one project, loaded in ${(loadMs / 1000).toFixed(1)} s`,
  );

  const config: AppConfig = loadConfig({
    ...env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    DATABASE_URL: url.toString(),
    REDIS_PREFIX: 'offline-bench',
    WORKER_QUEUES: 'evaluate',
    WORKER_PORT: '0',
    ADMIN_TOKEN: env.ADMIN_TOKEN ?? 'offline-bench-admin-token-0123456789',
    // The bench runs every pass itself.
    OFFLINE_SCAN_INTERVAL_MS: '2000000000',
  });
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    logger: false,
  });
  await app.init();
  const scan = app.get(OfflineScan);

  const baseline = async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++)
      times.push(
        (
          await timed(() =>
            db.query(`SELECT count(*) FROM devices WHERE project_id = $1 AND last_seen_at < $2`, [
              project,
              new Date(t0 + 3600000),
            ]),
          )
        )[0],
      );
    return median(times);
  };
  const base = await baseline();
  console.log(`baseline     count of every device through the index: ${base.toFixed(1)} ms`);
  console.log('| pass | devices read | alerts opened | time | ÷ baseline |');
  console.log('|---|---|---|---|---|');
  // Devices cross the hour at DEVICES / SPREAD_S per second of virtual time.
  const perSecond = DEVICES / SPREAD_S;
  const edge = t0 + (AFTER_S - SPREAD_S) * 1000; // the oldest device crosses here
  const passes: Array<[string, number]> = [
    ['first (sets the watermark)', edge],
    ['idle', edge],
    ['~100 quiet', edge + (100 / perSecond) * 1000],
    ['~1,000 quiet', edge + (1100 / perSecond) * 1000],
    ['idle', edge + (1100 / perSecond) * 1000],
  ];
  for (const [label, at] of passes) {
    const [ms, s] = await timed(() => scan.run(new Date(at), { wait: true }));
    console.log(
      `| ${label} | ${s.devices} | ${s.opened} | ${ms.toFixed(1)} ms | ${(ms / base).toFixed(3)} |`,
    );
  }
  await app.close();
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${url.pathname.slice(1)} WITH (FORCE)`);
  await admin.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
