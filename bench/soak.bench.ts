/**
 * npm run bench:soak — memory over a long run, against a running api + worker (`npm run
 * up`).
 *
 * 1. Capacity: the ingest benchmark's end-to-end run (stored events/s).
 * 2. Load: 5,000-event batches paced at BENCH_LOAD_FRACTION (0.7) of that capacity for
 *    BENCH_SOAK_S (600) seconds, to a tenant of its own with one never-firing rule.
 *    Every BENCH_SAMPLE_S (10) seconds the api's and the worker's `/metrics` give their
 *    resident set size and V8 heap in use.
 * 3. Drain: waits until every accepted event is stored and evaluated.
 *
 * Prints one line per minute and the ratio of the last minute's mean RSS to the second
 * minute's (the first is warm-up); flat is a ratio near 1. Knobs: BENCH_SOAK_S,
 * BENCH_SAMPLE_S, BENCH_LOAD_FRACTION, BENCH_BATCHES (capacity run), WORKER_PORT (8001).
 */
import { Client } from 'pg';
import { API, DATABASE_URL, env, int, machine, newTenant, percentile } from './common';
import { EVENTS, measureCapacity } from './ingest.bench';
import { load } from './webhook-latency.bench';

const SOAK_S = int('BENCH_SOAK_S', 600);
const SAMPLE_S = int('BENCH_SAMPLE_S', 10);
const LOAD_FRACTION = Number(env.BENCH_LOAD_FRACTION ?? 0.7);
const WORKER = `http://127.0.0.1:${env.WORKER_PORT ?? 8001}`;

interface Sample {
  atS: number;
  apiRss: number;
  apiHeap: number;
  workerRss: number;
  workerHeap: number;
}

/** A gauge's value from a Prometheus text page. */
function gauge(page: string, name: string): number {
  const line = page.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

async function memory(base: string): Promise<{ rss: number; heap: number }> {
  const page = await (await fetch(`${base}/metrics`)).text();
  return {
    rss: gauge(page, 'process_resident_memory_bytes'),
    heap: gauge(page, 'nodejs_heap_size_used_bytes'),
  };
}

async function main(): Promise<void> {
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const capacity = await measureCapacity(db);

  // The load's own tenant, with a rule that never fires: every batch is evaluated.
  const { projectId, key } = await newTenant('bench-soak');
  const rule = await fetch(`${API}/projects/${projectId}/rules`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'never',
      metric: 'temperature',
      operator: '>',
      threshold: 1e9,
      window_n: 10,
      required_k: 3,
    }),
  });
  if (rule.status !== 201) throw new Error(`rule: ${rule.status} ${await rule.text()}`);

  const samples: Sample[] = [];
  const offered = capacity * LOAD_FRACTION;
  const started = performance.now();
  const background = load(key, offered);
  while (performance.now() - started < SOAK_S * 1000) {
    await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
    const [api, worker] = await Promise.all([memory(API), memory(WORKER)]);
    samples.push({
      atS: (performance.now() - started) / 1000,
      apiRss: api.rss,
      apiHeap: api.heap,
      workerRss: worker.rss,
      workerHeap: worker.heap,
    });
  }
  const { perSec, latencies } = await background.stop();
  const loadEnded = performance.now();
  // Drain: everything accepted is stored and evaluated.
  for (;;) {
    const { rows } = await db.query(
      `SELECT count(*)::int AS behind FROM devices d
        WHERE d.project_id = $1
          AND d.evaluated_until IS DISTINCT FROM (SELECT max(ts) FROM telemetry t WHERE t.device_id = d.id)`,
      [projectId],
    );
    if (rows[0].behind === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const drainS = (performance.now() - loadEnded) / 1000;
  await db.end();

  const mb = (n: number) => (n / 2 ** 20).toFixed(0);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const minute = (m: number) => samples.filter((s) => s.atS > m * 60 && s.atS <= (m + 1) * 60);
  const minutes = Math.ceil(SOAK_S / 60);
  console.log(`machine      ${machine()}`);
  console.log(`capacity     ${Math.round(capacity).toLocaleString('en-US')} events/s stored`);
  console.log(
    `load         ${LOAD_FRACTION} × capacity offered, ${Math.round(perSec).toLocaleString('en-US')} events/s sent for ${SOAK_S} s; drained ${drainS.toFixed(1)} s after`,
  );
  console.log(
    `api latency  p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms per ${EVENTS}-event request`,
  );
  console.log('minute  api RSS / heap MB   worker RSS / heap MB');
  for (let m = 0; m < minutes; m++) {
    const ss = minute(m);
    if (ss.length === 0) continue;
    console.log(
      `${String(m + 1).padStart(6)}  ${mb(mean(ss.map((s) => s.apiRss))).padStart(7)} / ${mb(mean(ss.map((s) => s.apiHeap))).padEnd(9)} ${mb(mean(ss.map((s) => s.workerRss))).padStart(7)} / ${mb(mean(ss.map((s) => s.workerHeap)))}`,
    );
  }
  const second = minute(Math.min(1, minutes - 1));
  const last = minute(minutes - 1);
  const ratio = (pick: (s: Sample) => number) =>
    (mean(last.map(pick)) / mean(second.map(pick))).toFixed(2);
  console.log(
    `RSS          last minute ÷ second minute: api ${ratio((s) => s.apiRss)}, worker ${ratio((s) => s.workerRss)} (heap: api ${ratio((s) => s.apiHeap)}, worker ${ratio((s) => s.workerHeap)})`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
