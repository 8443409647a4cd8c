/**
 * npm run bench:e2e — the whole pipeline against a running stack (`npm run up`), compared
 * with a raw COPY of the same rows on the same PostgreSQL in the same run.
 *
 * A fresh tenant gets two ALL-scope rules, `temperature > 1e9` (window 10, k 3; never fires)
 * and the end marker `end > 0` (1 of 1), plus BENCH_RULES more that never fire, and a
 * webhook on alert.created aimed at an HTTP server in this process on 127.0.0.1 (the .env
 * that `npm run up` writes sets WEBHOOK_ALLOW_PRIVATE_NETWORKS=true, so the worker may
 * deliver there). D devices each send B batches of E `{temperature, humidity}` events from C
 * concurrent clients (a device's batches in order, one at a time; 429 and 503 retried after
 * their Retry-After); each device's last event also carries `end: 1`.
 *
 * End to end = the first request → the end marker's alert.created webhook received for
 * every device. Along the way: all 202s received (accepted), every device's last batch in
 * PostgreSQL (stored), every device's evaluation cursor at its last reading (evaluated).
 * Then one `COPY … FROM STDIN` stream of the same rows into a logged scratch table
 * (uuid, timestamptz, jsonb, primary key (device_id, ts)), dropped afterwards.
 *
 * Knobs: BENCH_DEVICES (20), BENCH_BATCHES (10 per device), BENCH_EVENTS (5000 per batch),
 * BENCH_CONCURRENCY (4), BENCH_RULES (0 extra never-firing rules; `none`: no rules at all and
 * no webhook, end to end is then every evaluation cursor at its last reading, for the cost
 * of evaluation), BENCH_WORKERS (1: the
 * worker `npm run up` started; N > 1 spawns N − 1 more `node dist/apps/worker/main.js` with
 * WORKER_PORT=0 for the run and stops them after; needs `npm run build`),
 * BENCH_TIMEOUT_S (600), BENCH_T0 (when the readings start: `2025-01-01T00:00:00Z` unless
 * set; `recent`: a day ago, as live data is. On the partitioned table, a database migrated
 * less than about a week ago still takes such readings into its partition of the past,
 * which runs up to the first partition the migration created.)
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  API,
  DATABASE_URL,
  env,
  int,
  machine,
  newTenant,
  percentile,
  timingClient,
} from './common';

const DEVICES = int('BENCH_DEVICES', 20);
const BATCHES = int('BENCH_BATCHES', 10);
const EVENTS = int('BENCH_EVENTS', 5000);
const CONCURRENCY = int('BENCH_CONCURRENCY', 4);
/** BENCH_RULES=none: no rules and no webhook; end to end is then "evaluated". */
const NO_RULES = env.BENCH_RULES === 'none';
const EXTRA_RULES = NO_RULES ? 0 : int('BENCH_RULES', 0);
const RULES = NO_RULES ? 0 : 2 + EXTRA_RULES;
const WORKERS = int('BENCH_WORKERS', 1);
const TIMEOUT_MS = int('BENCH_TIMEOUT_S', 600) * 1000;
const TOTAL = DEVICES * BATCHES * EVENTS;
const T0 =
  env.BENCH_T0 === 'recent'
    ? Math.floor(Date.now() / 3600_000) * 3600_000 - 86400_000
    : Date.parse(env.BENCH_T0 ?? '2025-01-01T00:00:00Z');
if (!Number.isFinite(T0))
  throw new Error(`BENCH_T0: an ISO 8601 time or "recent", not ${env.BENCH_T0}`);
const END_RULE = 'end';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tsOf = (n: number) => new Date(T0 + n * 1000).toISOString();
const LAST_TS = tsOf(BATCHES * EVENTS - 1);

interface Reading {
  ts: string;
  data: Record<string, number>;
}

/** Batch `batch` of device `device`: readings one second apart, the end marker on the last. */
function readings(batch: number): Reading[] {
  return Array.from({ length: EVENTS }, (_, i) => {
    const n = batch * EVENTS + i;
    const data: Record<string, number> = {
      temperature: 20 + (n % 100) / 10,
      humidity: 40 + (n % 7),
    };
    if (n === BATCHES * EVENTS - 1) data.end = 1;
    return { ts: tsOf(n), data };
  });
}

async function post(key: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${API}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
}

/** The rules and the webhook; the extra rules never fire either. */
async function setUp(projectId: string, key: string, url: string): Promise<void> {
  if (NO_RULES) return;
  const rule = (name: string, metric: string, operator: string, threshold: number, n: number) =>
    post(key, `/projects/${projectId}/rules`, {
      name,
      metric,
      operator,
      threshold,
      window_n: n,
      required_k: Math.min(3, n),
      scope: 'ALL',
    });
  await rule('never', 'temperature', '>', 1e9, 10);
  await post(key, `/projects/${projectId}/rules`, {
    name: END_RULE,
    metric: 'end',
    operator: '>',
    threshold: 0,
    window_n: 1,
    required_k: 1,
    scope: 'ALL',
  });
  const never: Array<[string, string, number]> = [
    ['temperature', '>=', 1e9],
    ['humidity', '<', -1e9],
    ['temperature', '<=', -1e9],
    ['humidity', '>', 1e9],
    ['temperature', '==', -1],
  ];
  for (let i = 0; i < EXTRA_RULES; i++) {
    const [metric, op, threshold] = never[i % never.length];
    await rule(`never ${i}`, metric, op, threshold, 10);
  }
  await post(key, `/projects/${projectId}/webhooks`, { url, event_types: ['alert.created'] });
}

/** Collects the end marker's alert.created per device; counts anything else. */
async function receiver(): Promise<{
  url: string;
  server: Server;
  ends: Map<string, number>;
  others: () => number;
  allEnds: Promise<number>;
}> {
  const ends = new Map<string, number>();
  let others = 0;
  let done: (at: number) => void = () => undefined;
  const allEnds = new Promise<number>((r) => (done = r));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      res.writeHead(204).end();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          type: string;
          data: { rule: { name: string | null }; device: { external_id: string } };
        };
        if (body.type === 'alert.created' && body.data.rule.name === END_RULE) {
          if (!ends.has(body.data.device.external_id)) ends.set(body.data.device.external_id, at);
          if (ends.size === DEVICES) done(at);
        } else others++;
      } catch {
        others++;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bench-e2e`;
  return { url, server, ends, others: () => others, allEnds };
}

/** N − 1 more worker processes (the one `npm run up` started is the first). */
async function extraWorkers(): Promise<ChildProcess[]> {
  const main = resolve(__dirname, '..', 'dist', 'apps', 'worker', 'main.js');
  const children = Array.from({ length: Math.max(0, WORKERS - 1) }, () =>
    spawn(process.execPath, [main], {
      cwd: resolve(__dirname, '..'),
      env: { ...env, WORKER_PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((ok, fail) => {
          const timer = setTimeout(
            () => fail(new Error('extra worker not started in 60 s')),
            60000,
          );
          let seen = '';
          child.stdout?.on('data', (c: Buffer) => {
            if (seen === 'started') return;
            seen = (seen + c.toString('utf8')).slice(-4096);
            if (seen.includes('worker started')) {
              seen = 'started';
              clearTimeout(timer);
              ok();
            }
          });
          child.once('exit', (code) => fail(new Error(`extra worker exited (${code})`)));
        }),
    ),
  );
  for (const c of children) c.stdout?.resume(); // keep draining its log
  return children;
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGTERM');
        }),
    ),
  );
}

interface Run {
  acceptedMs: number;
  storedMs: number;
  evaluatedMs: number;
  endToEndMs: number;
  latencies: number[];
  retries: number;
  others: number;
}

async function endToEnd(db: Client, bodies: string[][]): Promise<Run> {
  const rx = await receiver();
  const { projectId, key } = await newTenant('bench-e2e');
  await setUp(projectId, key, rx.url);

  // A device's batches go in order, one at a time (the api numbers them as they arrive);
  // the next batch is the first device, round robin, that has none in flight.
  const next = new Array<number>(DEVICES).fill(0);
  const busy = new Array<boolean>(DEVICES).fill(false);
  let cursor = 0;
  let wake: Array<() => void> = [];
  const take = (): [number, number] | null | 'wait' => {
    let remaining = false;
    for (let k = 0; k < DEVICES; k++) {
      const d = (cursor + k) % DEVICES;
      if (next[d] >= BATCHES) continue;
      remaining = true;
      if (busy[d]) continue;
      cursor = d + 1;
      busy[d] = true;
      return [d, next[d]++];
    }
    return remaining ? 'wait' : null;
  };
  const latencies: number[] = [];
  let retries = 0;
  const started = performance.now();
  const marks = { stored: NaN, evaluated: NaN };
  let evaluated!: (at: number) => void;
  const allEvaluated = new Promise<number>((r) => (evaluated = r));
  let polling = true;
  const poll = (async () => {
    while (polling && Number.isNaN(marks.evaluated)) {
      const { rows } = await db.query(
        `SELECT count(*) FILTER (WHERE (SELECT max(ts) FROM telemetry t WHERE t.device_id = d.id) >= $2)::int AS stored,
                count(*) FILTER (WHERE d.evaluated_until >= $2)::int AS evaluated
           FROM devices d WHERE d.project_id = $1`,
        [projectId, LAST_TS],
      );
      const now = performance.now();
      if (Number.isNaN(marks.stored) && rows[0].stored === DEVICES) marks.stored = now;
      if (rows[0].evaluated === DEVICES) evaluated((marks.evaluated = now));
      await sleep(100);
    }
  })();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (;;) {
        const job = take();
        if (job === null) return;
        if (job === 'wait') {
          await new Promise<void>((r) => wake.push(r));
          continue;
        }
        const [d, b] = job;
        for (;;) {
          const t = performance.now();
          const res = await fetch(`${API}/telemetry`, {
            method: 'POST',
            headers: { 'x-api-key': key, 'content-type': 'application/json' },
            body: bodies[d][b],
          });
          const text = await res.text();
          if (res.status === 202) {
            latencies.push(performance.now() - t);
            break;
          }
          if (res.status !== 429 && res.status !== 503) {
            throw new Error(`POST /telemetry: ${res.status} ${text}`);
          }
          retries++;
          await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
        }
        busy[d] = false;
        const waiting = wake;
        wake = [];
        waiting.forEach((w) => w());
      }
    }),
  );
  const acceptedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `only ${rx.ends.size} of ${DEVICES} end-marker webhooks in ${TIMEOUT_MS / 1000} s`,
          ),
        ),
      TIMEOUT_MS,
    );
  });
  const doneAt = await Promise.race([NO_RULES ? allEvaluated : rx.allEnds, timeout]).finally(() =>
    clearTimeout(timer),
  );
  polling = false;
  await poll;
  // The poll runs every 100 ms; one that missed the last step is at most this late.
  if (Number.isNaN(marks.stored)) marks.stored = doneAt;
  if (Number.isNaN(marks.evaluated)) marks.evaluated = doneAt;
  rx.server.close();
  latencies.sort((a, b) => a - b);
  const since = (at: number) => at - started;
  return {
    acceptedMs: since(acceptedAt),
    storedMs: since(marks.stored),
    evaluatedMs: since(marks.evaluated),
    endToEndMs: since(doneAt),
    latencies,
    retries,
    others: rx.others(),
  };
}

/** The same rows in one COPY stream into a logged scratch table shaped like telemetry. */
async function rawCopy(db: Client, bodies: string[][]): Promise<number> {
  await db.query(`DROP TABLE IF EXISTS bench_e2e_copy_scratch`);
  await db.query(
    `CREATE TABLE bench_e2e_copy_scratch (device_id uuid NOT NULL, ts timestamptz(3) NOT NULL, data jsonb NOT NULL, PRIMARY KEY (device_id, ts))`,
  );
  try {
    const ids = Array.from({ length: DEVICES }, () => crypto.randomUUID());
    // COPY text format, in the order the batches were sent; prepared before the clock starts.
    const chunks: string[] = [];
    for (let b = 0; b < BATCHES; b++) {
      for (let d = 0; d < DEVICES; d++) {
        const parsed = JSON.parse(bodies[d][b]) as { events: Reading[] };
        chunks.push(
          parsed.events
            .map((e) => `${ids[d]}\t${e.ts}\t${JSON.stringify(e.data).replace(/\\/g, '\\\\')}\n`)
            .join(''),
        );
      }
    }
    const started = performance.now();
    await pipeline(
      Readable.from(chunks),
      db.query(copyFrom(`COPY bench_e2e_copy_scratch (device_id, ts, data) FROM STDIN`)),
    );
    return TOTAL / ((performance.now() - started) / 1000);
  } finally {
    await db.query(`DROP TABLE IF EXISTS bench_e2e_copy_scratch`);
  }
}

async function main(): Promise<void> {
  timingClient();
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const pg = (await db.query(`SHOW server_version`)).rows[0].server_version as string;
  const bodies = Array.from({ length: DEVICES }, (_, d) =>
    Array.from({ length: BATCHES }, (_, b) =>
      JSON.stringify({ device_external_id: `e2e-${d}`, events: readings(b) }),
    ),
  );
  const workers = await extraWorkers();
  let run: Run;
  try {
    run = await endToEnd(db, bodies);
  } finally {
    await stopWorkers(workers);
  }
  const copy = await rawCopy(db, bodies);
  await db.end();

  const rate = (ms: number) => TOTAL / (ms / 1000);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const p50 = percentile(run.latencies, 50);
  const p99 = percentile(run.latencies, 99);
  const e2e = rate(run.endToEndMs);
  const concurrency = env.WORKER_CONCURRENCY ?? '4';
  console.log(`machine      ${machine()}, PostgreSQL ${pg}`);
  console.log(
    `workload     ${DEVICES} devices × ${BATCHES} batches × ${EVENTS} events (${fmt(TOTAL)}), ${CONCURRENCY} concurrent clients, ` +
      `${RULES} rules (${EXTRA_RULES} extra), ${WORKERS} worker process(es) × concurrency ${concurrency}`,
  );
  console.log(
    `accepted     ${fmt(rate(run.acceptedMs))} events/s (all 202s at ${s(run.acceptedMs)}; ${run.retries} retries after 429/503)`,
  );
  console.log(
    `stored       ${fmt(rate(run.storedMs))} events/s (every last batch in PostgreSQL at ${s(run.storedMs)}, ±0.1 s)`,
  );
  console.log(
    `evaluated    ${fmt(rate(run.evaluatedMs))} events/s (every evaluation cursor at its last reading at ${s(run.evaluatedMs)}, ±0.1 s)`,
  );
  console.log(
    `end to end   ${fmt(e2e)} events/s (first request → ${NO_RULES ? 'every cursor at its last reading' : 'last end-marker webhook'} at ${s(run.endToEndMs)})`,
  );
  console.log(
    `api latency  p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms per ${fmt(EVENTS)}-event request`,
  );
  console.log(
    `raw COPY     ${fmt(copy)} rows/s (one COPY FROM STDIN stream, logged table, primary key)`,
  );
  console.log(`ratio        end to end ÷ COPY = ${(e2e / copy).toFixed(2)}`);
  if (run.others > 0) console.log(`note         ${run.others} unexpected webhook(s) received`);
  console.log(
    JSON.stringify({
      date: new Date().toISOString().slice(0, 10),
      machine: machine(),
      postgres: pg,
      devices: DEVICES,
      batches: BATCHES,
      events: EVENTS,
      concurrency: CONCURRENCY,
      rules: RULES,
      workers: WORKERS,
      total: TOTAL,
      accepted_per_s: Math.round(rate(run.acceptedMs)),
      stored_per_s: Math.round(rate(run.storedMs)),
      evaluated_per_s: Math.round(rate(run.evaluatedMs)),
      e2e_per_s: Math.round(e2e),
      e2e_s: Number((run.endToEndMs / 1000).toFixed(2)),
      copy_per_s: Math.round(copy),
      ratio: Number((e2e / copy).toFixed(3)),
      p50_ms: Math.round(p50),
      p99_ms: Math.round(p99),
      retries: run.retries,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
