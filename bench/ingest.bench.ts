/**
 * npm run bench:ingest — drives a running api + worker (`npm run up`) and compares the
 * end-to-end rate with a raw COPY of the same rows into a scratch table of the same shape,
 * on the same PostgreSQL, in the same run (the ratio is what we track: these machines are
 * noisy). Knobs: BENCH_DEVICES, BENCH_BATCHES, BENCH_CONCURRENCY, BENCH_EVENTS.
 */
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { API, DATABASE_URL, int, machine, newTenant, percentile, timingClient } from './common';

export const DEVICES = int('BENCH_DEVICES', 4);
export const BATCHES = int('BENCH_BATCHES', 40);
const CONCURRENCY = int('BENCH_CONCURRENCY', 4);
export const EVENTS = int('BENCH_EVENTS', 5000);
const T0 = Date.UTC(2025, 0, 1);

export function batchBody(device: number, batch: number): string {
  const events = Array.from({ length: EVENTS }, (_, i) => {
    const n = batch * EVENTS + i;
    return {
      ts: new Date(T0 + n * 1000).toISOString(),
      data: {
        temperature: 20 + (n % 100) / 10,
        humidity: 40 + (n % 7),
        door: n % 2 === 0 ? 'open' : 'closed',
      },
    };
  });
  return JSON.stringify({ device_external_id: `bench-${device}`, events });
}

/**
 * How many batches PostgreSQL has applied for each of the project's devices (the api numbers
 * a device's batches 1, 2, … and the worker stores them in that order), keyed by external
 * id: one row per device. (A `count(*)` of the project's rows every 20 ms, as this poll once
 * was, read every stored row each time and took a core from the pipeline it measured:
 * capacity came out at a quarter of `bench:e2e`'s on the same stack.)
 */
async function appliedByDevice(db: Client, projectId: string): Promise<Map<string, number>> {
  const r = await db.query(
    `SELECT external_id, ingest_seq::int AS applied FROM devices WHERE project_id = $1`,
    [projectId],
  );
  return new Map(
    r.rows.map((row: { external_id: string; applied: number }) => [row.external_id, row.applied]),
  );
}

/** How many of `bodies` each device sends, keyed by external id. */
function batchesByDevice(bodies: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const body of bodies) {
    const id = (JSON.parse(body) as { device_external_id: string }).device_external_id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

export async function endToEnd(
  db: Client,
  bodies: string[],
  setup?: (tenant: { projectId: string; key: string }) => Promise<void>,
) {
  const { projectId, key } = await newTenant('bench-ingest');
  await setup?.({ projectId, key });
  // Stored: every device has as many batches applied as it sent (a new tenant's devices
  // start at none).
  const expected = batchesByDevice(bodies);
  const allStored = async () => {
    const applied = await appliedByDevice(db, projectId);
    return [...expected].every(([id, n]) => (applied.get(id) ?? 0) >= n);
  };
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++];
        const t = performance.now();
        const res = await fetch(`${API}/telemetry`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body,
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`POST /telemetry: ${res.status}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const acceptedAt = performance.now();
  const total = bodies.length * EVENTS;
  while (!(await allStored())) await new Promise((r) => setTimeout(r, 20));
  const storedAt = performance.now();
  // Evaluated: every device's cursor reached its newest reading (rule evaluation done).
  while (
    (
      await db.query(
        `SELECT count(*)::int AS n FROM devices d
          WHERE d.project_id = $1 AND d.evaluated_until IS DISTINCT FROM (SELECT max(ts) FROM telemetry t WHERE t.device_id = d.id)`,
        [projectId],
      )
    ).rows[0].n > 0
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const evaluatedAt = performance.now();
  latencies.sort((a, b) => a - b);
  return {
    total,
    acceptedPerSec: total / ((acceptedAt - started) / 1000),
    storedPerSec: total / ((storedAt - started) / 1000),
    evaluatedPerSec: total / ((evaluatedAt - started) / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/**
 * Capacity for the benchmarks that load at a fraction of it: stored events/s of this
 * file's end-to-end run (`batches`, by default BENCH_BATCHES, over BENCH_DEVICES devices).
 */
export async function measureCapacity(db: Client, batches = BATCHES): Promise<number> {
  const bodies = Array.from({ length: batches }, (_, i) =>
    batchBody(i % DEVICES, Math.floor(i / DEVICES)),
  );
  return (await endToEnd(db, bodies)).storedPerSec;
}

/** The same rows, COPYed batch by batch into a scratch table shaped like telemetry. */
async function rawCopy(db: Client, bodies: string[]): Promise<number> {
  await db.query(`DROP TABLE IF EXISTS bench_copy_scratch`);
  await db.query(
    `CREATE TABLE bench_copy_scratch (device_id uuid NOT NULL, ts timestamptz(3) NOT NULL, data jsonb NOT NULL, PRIMARY KEY (device_id, ts))`,
  );
  const deviceIds = Array.from({ length: DEVICES }, () => crypto.randomUUID());
  const lines = bodies.map((b, i) => {
    const parsed = JSON.parse(b) as { events: Array<{ ts: string; data: unknown }> };
    const device = deviceIds[i % DEVICES];
    // COPY text format: tab-separated; escape backslashes in the JSON.
    return parsed.events
      .map((e) => `${device}\t${e.ts}\t${JSON.stringify(e.data).replace(/\\/g, '\\\\')}\n`)
      .join('');
  });
  const started = performance.now();
  for (const chunk of lines) {
    await pipeline(
      Readable.from([chunk]),
      db.query(copyFrom(`COPY bench_copy_scratch (device_id, ts, data) FROM STDIN`)),
    );
  }
  const rate = (bodies.length * EVENTS) / ((performance.now() - started) / 1000);
  await db.query(`DROP TABLE bench_copy_scratch`);
  return rate;
}

async function main(): Promise<void> {
  timingClient();
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const bodies = Array.from({ length: BATCHES }, (_, i) =>
    batchBody(i % DEVICES, Math.floor(i / DEVICES)),
  );
  const e2e = await endToEnd(db, bodies);
  const copy = await rawCopy(db, bodies);
  await db.end();
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`machine      ${machine()}`);
  console.log(
    `workload     ${DEVICES} devices, ${BATCHES} batches × ${EVENTS} events, ${CONCURRENCY} concurrent clients (${fmt(e2e.total)} events)`,
  );
  console.log(`accepted     ${fmt(e2e.acceptedPerSec)} events/s (api answered 202)`);
  console.log(
    `stored       ${fmt(e2e.storedPerSec)} events/s end to end (first request → last row in PostgreSQL)`,
  );
  console.log(
    `api latency  p50 ${e2e.p50.toFixed(0)} ms, p99 ${e2e.p99.toFixed(0)} ms per 5,000-event request`,
  );
  console.log(`raw COPY     ${fmt(copy)} rows/s into a scratch table of the same shape`);
  console.log(`ratio        end to end ÷ COPY = ${(e2e.storedPerSec / copy).toFixed(2)}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
