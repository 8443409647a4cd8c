/**
 * npm run bench:reads — read latency as the table grows, against a running stack (`npm run
 * up`).
 *
 * A fresh tenant gets one device with a month of readings, one every 10 s (259,200
 * `{temperature, humidity}` rows), written straight into `telemetry`. First, with
 * BENCH_FILL_ROWS, other devices' rows are added until the table holds that many (2,000
 * devices at a time, one reading per second each, `generate_series`), then `ANALYZE`.
 * Each read then runs BENCH_READS (50) times, one at a time, and its p50 and p99 are
 * printed. Beside the api, the same SQL as the api's list and month aggregate runs
 * straight on PostgreSQL, as a same-run baseline.
 *
 * Reads: the newest page of 100 (list), a day with `from`/`to` (limit 1,000), `latest`,
 * `since` an hour before the end (limit 1,000), and `aggregate` (avg) over a day in
 * 5-minute buckets and over the month in 1-hour buckets.
 */
import { Client } from 'pg';
import { API, DATABASE_URL, int, machine, newTenant, percentile } from './common';

const READS = int('BENCH_READS', 50);
const FILL_ROWS = int('BENCH_FILL_ROWS', 0);
const MONTH_S = 30 * 24 * 3600;
const EVERY_S = 10;
const START = Date.UTC(2025, 5, 1);
const END = START + MONTH_S * 1000;

async function fill(db: Client): Promise<number> {
  const count = async () =>
    Number((await db.query(`SELECT count(*)::bigint AS n FROM telemetry`)).rows[0].n);
  let rows = await count();
  while (rows < FILL_ROWS) {
    const perDevice = Math.min(25000, Math.ceil((FILL_ROWS - rows) / 2000));
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data)
       SELECT d.id, timestamptz '2024-01-01' + i * interval '1 second',
              jsonb_build_object('temperature', 20 + (i % 100) / 10.0, 'humidity', 40 + i % 7)
         FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 2000)) d,
              generate_series(1, $1::int) i`,
      [perDevice],
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
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const rows = await fill(db);

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
