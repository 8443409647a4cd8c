/**
 * npm run bench:reads — read latency as the table grows, against a running stack (`npm run
 * up`).
 *
 * A fresh tenant gets one device with a month of readings, one every 10 s (259,200
 * `{temperature, humidity}` rows), written straight into `telemetry`. First, with
 * BENCH_FILL_ROWS, other devices' rows are added until the table holds that many (2,000
 * devices at a time, spread evenly over the same month, `generate_series`), then `ANALYZE`.
 *
 * The month is the first one after the partition of the past the migration left
 * (`telemetry_before_…`), in partitions of TELEMETRY_PARTITION_INTERVAL (month unless set),
 * created first as the maintenance duty would have by the month's end; so the reads run on
 * the layout of an installation in use, the device's rows sharing their partitions with the
 * other devices' rows.
 * Each read then runs BENCH_READS (50) times, one at a time, and its p50 and p99 are
 * printed. Beside the api, the same SQL as the api's list and month aggregate runs
 * straight on PostgreSQL, as a same-run baseline.
 *
 * Reads: the newest page of 100 (list), a day with `from`/`to` (limit 1,000), `latest`,
 * `since` an hour before the end (limit 1,000), and `aggregate` (avg) over a day in
 * 5-minute buckets and over the month in 1-hour buckets.
 */
import { PartitionInterval } from '@app/config';
import { buildDataSourceOptions, LOCK_CLASS, lockForTransaction } from '@app/database';
import { planPartitions, TelemetryPartitionsRepository } from '@app/telemetry';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { API, DATABASE_URL, env, int, machine, newTenant, percentile } from './common';

const READS = int('BENCH_READS', 50);
const FILL_ROWS = int('BENCH_FILL_ROWS', 0);
const INTERVAL = (env.TELEMETRY_PARTITION_INTERVAL ?? 'month') as PartitionInterval;
const MONTH_S = 30 * 24 * 3600;
const EVERY_S = 10;

/**
 * The month's start (where the partition of the past ends), after creating the partitions
 * until its end; returns how many partitions the table has.
 */
async function placeMonth(): Promise<{ start: number; partitions: number }> {
  const ds = new DataSource(buildDataSourceOptions({ url: DATABASE_URL, poolSize: 1 }, 'bench'));
  await ds.initialize();
  try {
    const repo = new TelemetryPartitionsRepository(ds);
    const past = (await repo.list()).find((p) => p.from === null);
    if (!past?.to) throw new Error('no partition of the past (telemetry_before_…) to start after');
    const start = past.to.getTime();
    await ds.transaction(async (em) => {
      await lockForTransaction(em, LOCK_CLASS.TELEMETRY_PARTITIONS, 'telemetry');
      const policy = { interval: INTERVAL, retentionDays: 0 };
      const plan = planPartitions(await repo.list(em), policy, new Date(start + MONTH_S * 1000));
      for (const p of plan.create) await repo.create(em, p);
    });
    return { start, partitions: (await repo.list()).length };
  } finally {
    await ds.destroy();
  }
}

async function fill(db: Client, start: number): Promise<number> {
  const count = async () =>
    Number((await db.query(`SELECT count(*)::bigint AS n FROM telemetry`)).rows[0].n);
  let rows = await count();
  while (rows < FILL_ROWS) {
    const perDevice = Math.min(25000, Math.ceil((FILL_ROWS - rows) / 2000));
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data)
       SELECT d.id, to_timestamp($2::float8 / 1000) + i * $3::int * interval '1 second',
              jsonb_build_object('temperature', 20 + (i % 100) / 10.0, 'humidity', 40 + i % 7)
         FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 2000)) d,
              generate_series(0, $1::int - 1) i`,
      [perDevice, start, Math.floor(MONTH_S / perDevice)],
    );
    rows = await count();
  }
  await db.query('ANALYZE telemetry');
  return rows;
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < READS; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const { start: START, partitions } = await placeMonth();
  const END = START + MONTH_S * 1000;
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const rows = await fill(db, START);

  const { projectId, key } = await newTenant('bench-reads');
  const device = await fetch(`${API}/projects/${projectId}/devices`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ external_id: 'reads' }),
  });
  if (device.status !== 201) throw new Error(`device: ${device.status} ${await device.text()}`);
  const deviceId = ((await device.json()) as { id: string }).id;
  await db.query(
    `INSERT INTO telemetry (device_id, ts, data)
     SELECT $1, to_timestamp($2::float8 / 1000) + i * interval '${EVERY_S} seconds',
            jsonb_build_object('temperature', 20 + (i % 100) / 10.0, 'humidity', 40 + i % 7)
       FROM generate_series(0, $3::int - 1) i`,
    [deviceId, START, MONTH_S / EVERY_S],
  );
  await db.query('ANALYZE telemetry');

  const base = `${API}/telemetry/devices/${deviceId}/telemetry`;
  const iso = (ms: number) => new Date(ms).toISOString();
  const dayFrom = END - 15 * 24 * 3600 * 1000;
  const get = (url: string) => async () => {
    const res = await fetch(url, { headers: { 'x-api-key': key } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  };
  const reads: Array<[string, () => Promise<unknown>]> = [
    ['list, newest 100', get(`${base}?limit=100`)],
    [
      'list, a day (1,000)',
      get(`${base}?limit=1000&from=${iso(dayFrom)}&to=${iso(dayFrom + 86400000)}`),
    ],
    ['latest', get(`${base}/latest`)],
    [
      'since an hour ago (360)',
      get(`${base}/since?since_ts=${(END - 3600 * 1000) / 1000}&limit=1000`),
    ],
    [
      'aggregate, a day by 5 min',
      get(
        `${base}/aggregate?metric=temperature&agg=avg&bucket_seconds=300&from=${iso(dayFrom)}&to=${iso(dayFrom + 86400000)}`,
      ),
    ],
    [
      'aggregate, the month by hour',
      get(
        `${base}/aggregate?metric=temperature&agg=avg&bucket_seconds=3600&from=${iso(START)}&to=${iso(END)}`,
      ),
    ],
    [
      'SQL: newest 100',
      () =>
        db.query(`SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts DESC LIMIT 100`, [
          deviceId,
        ]),
    ],
    [
      'SQL: the month by hour (avg)',
      () =>
        db.query(
          `SELECT date_trunc('hour', ts) AS b, avg((data ->> 'temperature')::float8)
             FROM telemetry WHERE device_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1`,
          [deviceId, iso(START), iso(END)],
        ),
    ],
  ];
  for (const [, fn] of reads) await fn(); // warm up once each
  console.log(`machine      ${machine()}`);
  console.log(
    `table        ${rows.toLocaleString('en-US')} rows before this run's device (${(MONTH_S / EVERY_S).toLocaleString('en-US')} readings)`,
  );
  console.log(
    `partitions   ${partitions} (${INTERVAL}), the month from ${new Date(START).toISOString().slice(0, 10)}`,
  );
  console.log(`reads        ${READS} of each, one at a time`);
  for (const [name, fn] of reads) {
    const ms = await time(fn);
    console.log(
      `${name.padEnd(30)} p50 ${percentile(ms, 50).toFixed(1).padStart(7)} ms   p99 ${percentile(ms, 99).toFixed(1).padStart(7)} ms`,
    );
  }
  await db.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
