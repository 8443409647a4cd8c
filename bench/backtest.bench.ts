/**
 * npm run bench:backtest — rule backtest speed against a running stack (`npm run up`).
 *
 * A fresh tenant gets one device with BENCH_BACKTEST_READINGS (250,000) readings, one every
 * 10 s ending now, `{temperature, humidity}`, sent through `POST /telemetry` in 5,000-event
 * batches and stored by the worker. Then, BENCH_READS (5) times each, one at a time:
 *
 * - baseline: the readings of the range read straight from PostgreSQL, in the backtest's
 *   5,000-row chunks with its SQL shape (`jsonb_typeof` filter, metric as text, ordered by
 *   ts), into this process: what reading the range costs with no evaluation and no api;
 * - backtest: `POST /projects/{id}/rules/backtest` of a 10-of-100 rule over the range, with
 *   and without hysteresis.
 *
 * Printed: readings per second of each (median run) and the backtest's time as a multiple of
 * the baseline's, measured in the same run.
 */
import { Client } from 'pg';
import { API, DATABASE_URL, int, machine, newTenant, percentile } from './common';

const READINGS = int('BENCH_BACKTEST_READINGS', 250000);
const READS = int('BENCH_READS', 5);
const EVERY_MS = 10000;
const BATCH = 5000;

async function post(path: string, key: string, body: unknown): Promise<Response> {
  return fetch(`${API}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  const { projectId, key } = await newTenant('bench-backtest');
  const end = Math.floor(Date.now() / 1000) * 1000;
  const start = end - READINGS * EVERY_MS;
  for (let sent = 0; sent < READINGS; sent += BATCH) {
    const events = Array.from({ length: Math.min(BATCH, READINGS - sent) }, (_, i) => {
      const n = sent + i;
      return {
        ts: new Date(start + n * EVERY_MS).toISOString(),
        data: {
          temperature: Math.round(50 + 30 * Math.sin(n / 500) + ((n * 7919) % 40) - 20),
          humidity: 40,
        },
      };
    });
    for (;;) {
      const res = await post('/telemetry', key, { device_external_id: 'bt', events });
      if (res.status === 202) break;
      if (res.status !== 429 && res.status !== 503) throw new Error(`ingest: ${res.status}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    const device = (
      await db.query(`SELECT id FROM devices WHERE project_id = $1 AND external_id = 'bt'`, [
        projectId,
      ])
    ).rows[0]?.id as string;
    const stored = async () =>
      Number(
        (await db.query(`SELECT count(*)::int AS n FROM telemetry WHERE device_id = $1`, [device]))
          .rows[0].n,
      );
    for (let t = Date.now(); (await stored()) < READINGS;) {
      if (Date.now() - t > 600000) throw new Error('readings not stored after 10 minutes');
      await new Promise((r) => setTimeout(r, 500));
    }
    const from = new Date(start).toISOString();
    const to = new Date(end).toISOString();
    console.log(
      `data: ${READINGS.toLocaleString('en-US')} readings of one device, ${from} → ${to}`,
    );

    const baseline = async () => {
      let after: number | null = null;
      let rows = 0;
      for (;;) {
        const res: { rows: Array<{ ts_ms: number }> } = await db.query(
          `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ts_ms, (data -> $5)::text AS m0
             FROM telemetry
            WHERE device_id = $1 AND ts >= $2 AND ts < $3
              AND ts > COALESCE(to_timestamp($4::float8 / 1000), '-infinity')
              AND jsonb_typeof(data -> $5) = 'number'
            ORDER BY ts LIMIT ${BATCH}`,
          [device, from, to, after, 'temperature'],
        );
        rows += res.rows.length;
        if (res.rows.length < BATCH) return rows;
        after = Number(res.rows[res.rows.length - 1].ts_ms);
      }
    };
    const rule = {
      metric: 'temperature',
      operator: '>',
      threshold: 70,
      window_n: 100,
      required_k: 10,
    };
    const backtest = (extra: Record<string, unknown>) => async () => {
      const res = await post(`/projects/${projectId}/rules/backtest`, key, {
        rule: { ...rule, ...extra },
        from,
        to,
        device_ids: [device],
        transitions_limit: 0,
      });
      if (res.status !== 200) throw new Error(`backtest: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { readings: number; opened: number };
      return body.readings;
    };
    const cases: Array<[string, () => Promise<number>]> = [
      ['baseline: chunked SELECT', baseline],
      ['backtest', backtest({})],
      ['backtest, hysteresis', backtest({ clear_threshold: 65, clear_k: 20 })],
    ];
    const medians: number[] = [];
    console.log(
      `${'read'.padEnd(28)}${'readings'.padStart(10)}${'median ms'.padStart(11)}${'p99 ms'.padStart(9)}${'readings/s'.padStart(13)}${'× baseline'.padStart(12)}`,
    );
    for (const [label, fn] of cases) {
      const ms: number[] = [];
      let n = 0;
      await fn(); // warm-up
      for (let i = 0; i < READS; i++) {
        const t = process.hrtime.bigint();
        n = await fn();
        ms.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      ms.sort((a, b) => a - b);
      const median = percentile(ms, 50);
      medians.push(median);
      console.log(
        `${label.padEnd(28)}${String(n).padStart(10)}${median.toFixed(0).padStart(11)}${percentile(ms, 99).toFixed(0).padStart(9)}${Math.round(
          (n / median) * 1000,
        )
          .toLocaleString('en-US')
          .padStart(13)}${(median / medians[0]).toFixed(2).padStart(12)}`,
      );
    }
  } finally {
    await db.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
