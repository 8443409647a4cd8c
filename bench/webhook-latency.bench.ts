/**
 * npm run bench:webhooks — ingest → webhook received latency, against a running api +
 * worker (`npm run up`, whose .env sets WEBHOOK_ALLOW_PRIVATE_NETWORKS=true so the worker
 * may reach this process's receiver on 127.0.0.1).
 *
 * 1. Capacity: the ingest benchmark's end-to-end run (stored events/s) over
 *    BENCH_CAPACITY_BATCHES (200) batches, 1,000,000 events: what the stack sustains for
 *    several seconds. Its default of 40 batches (about a second) measured a burst the
 *    queue absorbs, 145-176k events/s from one run to the next, and half of it could be
 *    more than the stack keeps up with for the two minutes of probes.
 * 2. Idle: probes alone, after BENCH_PROBE_WARMUP (50) probes that are not counted: the
 *    first probes after a process start meet cold code and connections (hundreds of ms,
 *    once), which is not the steady state the figure is about. A probe is one POST /telemetry of a hot reading (a 1-of-1 rule
 *    opens an alert) followed by a cold one (it resolves); the webhook subscribes to
 *    alert.created. Latency = the webhook arriving here − the POST being sent.
 * 3. Loaded: the same probes while other devices push 5,000-event batches, paced at
 *    BENCH_LOAD_FRACTION (0.5) of the measured capacity.
 *
 *    The api's latency per load request is reported too.
 * 4. Where the loaded probes' time went, stage by stage (bench/probe-stages.ts): from the
 *    api's acceptance to the ingest job's queueing, start, transaction and end, then to the
 *    delivery's first attempt and its POST. The job ends after it enqueued the delivery, so
 *    "job done → attempt" can be a few ms below zero.
 *
 * Knobs: BENCH_CAPACITY_BATCHES, BENCH_PROBES (per phase, 150), BENCH_PROBE_MS (100),
 * BENCH_PROBE_WARMUP (50), BENCH_LOAD_FRACTION; BENCH_LOAD_RATE (events/s) offers that load
 * instead and skips step 1, so that runs comparing two builds or settings offer the same
 * load (the capacity measured moves by ±12% from one run to the next, and the load with it).
 */
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Client } from 'pg';
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
import { batchBody, DEVICES, EVENTS, measureCapacity } from './ingest.bench';
import { formatStages, probeStages } from './probe-stages';

const CAPACITY_BATCHES = int('BENCH_CAPACITY_BATCHES', 200);
const PROBES = int('BENCH_PROBES', 150);
const PROBE_MS = int('BENCH_PROBE_MS', 100);
const PROBE_WARMUP = int('BENCH_PROBE_WARMUP', 50);
const LOAD_FRACTION = Number(env.BENCH_LOAD_FRACTION ?? 0.5);
const LOAD_RATE = env.BENCH_LOAD_RATE ? Number(env.BENCH_LOAD_RATE) : null;

async function post(key: string, path: string, body: unknown): Promise<Response> {
  const res = await fetch(`${API}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** Receives webhooks; resolves each probe's latency by the alert's triggered_at. */
async function receiver(): Promise<{
  url: string;
  expect: (ts: string, sentAt: number) => Promise<number>;
  close: () => void;
}> {
  const waiting = new Map<string, (receivedAt: number) => void>();
  const early = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const receivedAt = performance.now();
      res.writeHead(204).end();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        data: { alert: { triggered_at: string } };
      };
      const ts = body.data.alert.triggered_at;
      const done = waiting.get(ts);
      if (done) done(receivedAt);
      else early.set(ts, receivedAt);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bench`;
  return {
    url,
    expect: (ts, sentAt) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no webhook for ${ts} in 60 s`)), 60000);
        const settle = (at: number) => {
          clearTimeout(timer);
          waiting.delete(ts);
          resolve(at - sentAt);
        };
        const already = early.get(ts);
        if (already !== undefined) settle(already);
        else waiting.set(ts, settle);
      }),
    close: () => server.close(),
  };
}

async function probeTenant(url: string): Promise<{ projectId: string; key: string }> {
  const { projectId, key } = await newTenant('bench-webhooks');
  await post(key, `/projects/${projectId}/rules`, {
    name: 'probe',
    metric: 'temperature',
    operator: '>',
    threshold: 80,
    window_n: 1,
    required_k: 1,
  });
  await post(key, `/projects/${projectId}/webhooks`, { url, event_types: ['alert.created'] });
  return { projectId, key };
}

/** `count` probes, one every PROBE_MS; returns the sorted latencies in ms. */
async function probe(
  key: string,
  rx: Awaited<ReturnType<typeof receiver>>,
  startMs: number,
  count = PROBES,
): Promise<number[]> {
  const pending: Array<Promise<number>> = [];
  for (let i = 0; i < count; i++) {
    const hot = new Date(startMs + i * 10).toISOString();
    const cold = new Date(startMs + i * 10 + 5).toISOString();
    const sentAt = performance.now();
    pending.push(rx.expect(hot, sentAt));
    await post(key, '/telemetry', {
      device_external_id: 'probe',
      events: [
        { ts: hot, data: { temperature: 90 } },
        { ts: cold, data: { temperature: 10 } },
      ],
    });
    await new Promise((r) => setTimeout(r, Math.max(0, PROBE_MS - (performance.now() - sentAt))));
  }
  return (await Promise.all(pending)).sort((a, b) => a - b);
}

/**
 * The load's bodies, serialised before it starts: building a 5,000-event body is ~10 ms of
 * this process's event loop, the loop that also takes each webhook's arrival time and each
 * load request's answer, so bodies built on the fly added their build time to the
 * latencies measured (a load generator must not stall its own clock).
 */
export function loadBodies(eventsPerSec: number, seconds: number): Buffer[] {
  const count = Math.ceil((eventsPerSec * seconds) / EVENTS);
  return Array.from({ length: count }, (_, i) =>
    Buffer.from(batchBody(i % DEVICES, Math.floor(i / DEVICES) + 1000)),
  );
}

/**
 * Pushes the 5,000-event `bodies` at `eventsPerSec` until stopped (or out of bodies);
 * returns events sent per second and each request's api latency (sorted, ms).
 */
export function load(
  key: string,
  eventsPerSec: number,
  bodies: Buffer[],
): { stop: () => Promise<{ perSec: number; latencies: number[] }> } {
  let stopped = false;
  let sent = 0;
  const latencies: number[] = [];
  const intervalMs = (EVENTS / eventsPerSec) * 1000;
  const run = (async () => {
    const started = performance.now();
    for (let i = 0; !stopped && i < bodies.length; i++) {
      const due = started + i * intervalMs;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      if (stopped) break;
      // Not awaited one by one: a slow answer must not lower the offered load.
      const t = performance.now();
      void post(key, '/telemetry', bodies[i])
        .then(async (res) => {
          await res.arrayBuffer();
          latencies.push(performance.now() - t);
          sent += EVENTS;
        })
        .catch((err: Error) =>
          console.error(
            `load batch: ${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`,
          ),
        );
    }
    if (!stopped)
      console.warn('load: out of bodies before the probes ended (lighter load at the end)');
    return performance.now() - started;
  })();
  return {
    stop: async () => {
      stopped = true;
      const ms = await run;
      return { perSec: (sent / ms) * 1000, latencies: latencies.sort((a, b) => a - b) };
    },
  };
}

async function main(): Promise<void> {
  timingClient();
  let capacity: number | null = null;
  if (LOAD_RATE === null) {
    const db = new Client({ connectionString: DATABASE_URL });
    await db.connect();
    capacity = await measureCapacity(db, CAPACITY_BATCHES);
    await db.end();
  }

  const offered = LOAD_RATE ?? capacity! * LOAD_FRACTION;
  // 2 s to settle, the probes, and a fifth to spare. Built before any probe: building them
  // holds this process's event loop for seconds, long enough for the api to close the
  // keep-alive connections this process had open (a load request then met a closed one,
  // "fetch failed (other side closed)", once a run).
  const bodies = loadBodies(offered, (2 + (PROBES * PROBE_MS) / 1000) * 1.2);
  await new Promise((r) => setImmediate(r)); // let the closes of those connections land first

  const rx = await receiver();
  const { projectId: probeProject, key } = await probeTenant(rx.url);
  const base = Date.UTC(2026, 0, 1);
  await probe(key, rx, base - 3600_000, PROBE_WARMUP);
  const idle = await probe(key, rx, base);

  const loadTenant = await newTenant('bench-webhooks-load');
  const background = load(loadTenant.key, offered, bodies);
  await new Promise((r) => setTimeout(r, 2000)); // let the load settle in
  const loadedSince = Date.now();
  const loaded = await probe(key, rx, base + 3600_000);
  const { perSec: achieved, latencies: apiMs } = await background.stop();
  rx.close();
  const stages = await probeStages(probeProject, loadedSince);

  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  console.log(`machine      ${machine()}`);
  if (capacity !== null)
    console.log(
      `capacity     ${fmt(capacity)} events/s stored end to end (${CAPACITY_BATCHES} batches)`,
    );
  console.log(
    `load         offered ${fmt(offered)} events/s (${capacity === null ? 'BENCH_LOAD_RATE' : `${LOAD_FRACTION} × capacity`}), sent ${fmt(achieved)} events/s`,
  );
  console.log(
    `api latency  p50 ${ms(percentile(apiMs, 50))}, p99 ${ms(percentile(apiMs, 99))} per 5,000-event load request (${apiMs.length} requests)`,
  );
  console.log(
    `probes       ${PROBES} per phase, one every ${PROBE_MS} ms, after ${PROBE_WARMUP} not counted`,
  );
  console.log(
    `idle         ingest → webhook p50 ${ms(percentile(idle, 50))}, p99 ${ms(percentile(idle, 99))}, max ${ms(idle[idle.length - 1])}`,
  );
  console.log(
    `loaded       ingest → webhook p50 ${ms(percentile(loaded, 50))}, p99 ${ms(percentile(loaded, 99))}, max ${ms(loaded[loaded.length - 1])}`,
  );
  console.log(
    `stages       of the last ${stages[0]?.ms.length ?? 0} loaded probes, p50 / p90 / p99 ms (Redis keeps the last 1,000 ingest jobs):`,
  );
  for (const line of formatStages(stages)) console.log(`               ${line}`);
  console.log(
    `ratio        loaded ÷ idle: p50 ${(percentile(loaded, 50) / percentile(idle, 50)).toFixed(2)}, p99 ${(percentile(loaded, 99) / percentile(idle, 99)).toFixed(2)}`,
  );
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
