/**
 * What the chaos soak runs and drives: its processes (the api and workers as children,
 * beside a private PostgreSQL and Redis), the webhook receiver, and the devices' clients.
 */
import { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { PrivatePostgres, PrivateRedis } from '../test/support/private-services';
import { exited, freePort, spawnApp, waitFor } from '../test/support/processes';
import {
  ADMIN_TOKEN,
  ALERT_EVERY,
  CAPACITY_BATCHES,
  EVENTS,
  HOT_FROM,
  HOT_TO,
  now,
  REDIS_PREFIX,
  RULE,
  sleep,
  T0,
  T_EVERY,
} from './soak-settings';

type App = ChildProcess & { output: () => string };

export interface Proc {
  name: string;
  role: 'api' | 'worker';
  app: App;
  port: number;
  /** performance.now() at spawn and at exit. */
  startedAt: number;
  exitedAt?: number;
  /** Killed by the chaos (or stopped at the end): its exit is expected. */
  expectedExit: boolean;
}

export class Stack {
  readonly procs: Proc[] = [];
  /** Processes that exited without being asked to: a crash, reported as a defect. */
  readonly crashes: string[] = [];
  pg?: PrivatePostgres;
  redis?: PrivateRedis;
  databaseUrl = '';
  apiUrl = '';
  private workerCount = 0;

  appEnv(extra: Record<string, string>): Record<string, string> {
    return {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      LOG_FORMAT: 'json',
      DATABASE_URL: this.databaseUrl,
      REDIS_URL: this.redis!.url(),
      REDIS_PREFIX,
      ADMIN_TOKEN,
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      // A key of its own (else one derived from ADMIN_TOKEN, and a warning at every boot).
      WEBHOOK_SECRET_KEYS: `soak:${Buffer.alloc(32, 7).toString('base64')}`,
      // The soak measures the pipeline, not a client's rate limit.
      RATE_LIMIT_INGEST_PER_MINUTE: '1000000',
      RATE_LIMIT_API_PER_MINUTE: '1000000',
      ...extra,
    };
  }

  private spawn(role: 'api' | 'worker', name: string, port: number): Proc {
    const app = spawnApp(
      role,
      this.appEnv(role === 'api' ? { PORT: String(port) } : { WORKER_PORT: String(port) }),
    );
    const proc: Proc = { name, role, app, port, startedAt: now(), expectedExit: false };
    app.once('exit', (code, signal) => {
      proc.exitedAt = now();
      if (!proc.expectedExit) {
        this.crashes.push(`${name} exited by itself (${signal ?? code})`);
        console.error(`!! ${name} exited by itself (${signal ?? code}):\n${tail(app.output())}`);
      }
    });
    this.procs.push(proc);
    return proc;
  }

  async startApi(): Promise<void> {
    const port = await freePort();
    this.spawn('api', 'api', port);
    this.apiUrl = `http://127.0.0.1:${port}`;
    await waitFor(`${this.apiUrl}/health/ready`, 200, 120000);
  }

  async startWorker(): Promise<Proc> {
    const port = await freePort();
    const proc = this.spawn('worker', `worker-${++this.workerCount}`, port);
    await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 120000);
    return proc;
  }

  get workers(): Proc[] {
    return this.procs.filter((p) => p.role === 'worker' && p.exitedAt === undefined);
  }

  get alive(): Proc[] {
    return this.procs.filter((p) => p.exitedAt === undefined);
  }

  /** Everything we started, in reverse dependency order; never throws. */
  async stop(): Promise<void> {
    const children = this.alive;
    for (const p of children) p.expectedExit = true;
    await Promise.all(
      children.map(async (p) => {
        p.app.kill('SIGTERM');
        const timer = setTimeout(() => p.app.kill('SIGKILL'), 15000);
        await exited(p.app);
        clearTimeout(timer);
      }),
    );
    await this.redis?.stop().catch((err: Error) => console.error(`redis stop: ${err.message}`));
    await this.pg?.stop().catch((err: Error) => console.error(`postgres stop: ${err.message}`));
  }

  /** For the exit hook: nothing asynchronous runs there. */
  killNow(): void {
    for (const p of this.alive) {
      p.expectedExit = true;
      p.app.kill('SIGKILL');
    }
  }

  writeLogs(base: string): string[] {
    const files: string[] = [];
    for (const p of this.procs) {
      const file = `${base}-${p.name}.log`;
      writeFileSync(file, p.app.output());
      files.push(file);
    }
    if (this.pg) {
      writeFileSync(`${base}-postgres.log`, this.pg.log());
      files.push(`${base}-postgres.log`);
    }
    if (this.redis) {
      writeFileSync(`${base}-redis.log`, this.redis.log());
      files.push(`${base}-redis.log`);
    }
    return files;
  }
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Resident set size of a process, from /proc (bytes); undefined once it is gone. */
export function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// The webhook receiver: counts deliveries by (webhook path, webhook-id).

export class Receiver {
  readonly seen = new Map<string, number>();
  requests = 0;
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.requests++;
        const key = `${req.url} ${req.headers['webhook-id']}`;
        this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get distinct(): number {
    return this.seen.size;
  }

  get duplicates(): number {
    return this.requests - this.seen.size;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
  }
}

/** Batch `batch` of a device: readings one second apart, `t` on every T_EVERY-th. */
function batchBody(device: string, batch: number): string {
  const parts: string[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const n = batch * EVENTS + i;
    const ts = new Date(T0 + n * 1000).toISOString();
    const hot = batch % ALERT_EVERY === 0 && i >= HOT_FROM && i < HOT_TO;
    const t = i % T_EVERY === 0 ? `,"t":${hot ? 10 : 1}` : '';
    parts.push(
      `{"ts":"${ts}","data":{"temperature":${20 + (n % 100) / 10},"humidity":${40 + (n % 7)}${t}}}`,
    );
  }
  return `{"device_external_id":"${device}","events":[${parts.join(',')}]}`;
}

async function api<T>(
  base: string,
  path: string,
  auth: Record<string, string>,
  body: unknown,
): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export interface Tenant {
  projectId: string;
  key: string;
  ruleId: string;
}

export async function tenant(base: string, label: string, hooks: string[]): Promise<Tenant> {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const name = `${label}-${Date.now().toString(36)}`;
  const org = await api<{ id: string }>(base, '/orgs', admin, { name });
  const project = await api<{ id: string }>(base, `/orgs/${org.id}/projects`, admin, { name });
  const { key } = await api<{ key: string }>(base, `/projects/${project.id}/api-keys`, admin, {
    name: 'soak',
  });
  const auth = { 'x-api-key': key };
  const rule = await api<{ id: string }>(base, `/projects/${project.id}/rules`, auth, {
    name: 'soak',
    metric: RULE.metric,
    operator: RULE.operator,
    threshold: RULE.threshold,
    window_n: RULE.windowN,
    required_k: RULE.requiredK,
    cooldown_seconds: RULE.cooldownSeconds,
  });
  for (const url of hooks) await api(base, `/projects/${project.id}/webhooks`, auth, { url });
  return { projectId: project.id, key, ruleId: rule.id };
}

/** What the clients saw in one sampling window. */
interface WindowCounts {
  acceptedEvents: number;
  s429: number;
  s503: number;
  noAnswer: number;
  other: number;
  latencies: number[];
}

export const emptyCounts = (): WindowCounts => ({
  acceptedEvents: 0,
  s429: 0,
  s503: 0,
  noAnswer: 0,
  other: 0,
  latencies: [],
});

/**
 * Devices that send batches in order, one in flight each, retrying until 202. `window`
 * collects what the current sampling window saw; the sampler swaps it.
 */
export class Clients {
  window = emptyCounts();
  /** Per device, the batches answered 202. */
  readonly accepted = new Map<string, Set<number>>();
  /** Batches given up on (no 202 before the deadline): stored or not, both are right. */
  readonly unresolved: Array<{ device: string; batch: number }> = [];
  /** Answers other than 202/429/503 (a client error or a 5xx): each is a defect. */
  readonly errors: string[] = [];
  sentBatches = 0;
  skippedTicks = 0;
  private readonly next = new Map<string, number>();
  private readonly busy = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private giveUpAt = Infinity;

  constructor(
    private readonly base: string,
    private readonly key: string,
    readonly devices: string[],
  ) {
    for (const d of devices) {
      this.accepted.set(d, new Set());
      this.next.set(d, 0);
    }
  }

  get acceptedEvents(): number {
    let n = 0;
    for (const s of this.accepted.values()) n += s.size * EVENTS;
    return n;
  }

  /** Sends the next batch of the first free device (round robin); false if all are busy. */
  tick(): boolean {
    const free = this.devices.find((d) => !this.busy.has(d));
    if (!free) {
      this.skippedTicks++;
      return false;
    }
    // Round robin: the device goes to the back of the line.
    this.devices.push(this.devices.splice(this.devices.indexOf(free), 1)[0]);
    const batch = this.next.get(free)!;
    this.next.set(free, batch + 1);
    this.busy.add(free);
    this.sentBatches++;
    const p = this.send(free, batch).finally(() => {
      this.busy.delete(free);
      this.inFlight.delete(p);
    });
    this.inFlight.add(p);
    return true;
  }

  /** Waits for every batch in flight to be answered 202, up to `ms`. */
  async settle(ms: number): Promise<void> {
    this.giveUpAt = now() + ms;
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  private async send(device: string, batch: number): Promise<void> {
    const body = batchBody(device, batch);
    for (;;) {
      if (now() > this.giveUpAt) {
        this.unresolved.push({ device, batch });
        return;
      }
      const started = now();
      let status = 0;
      let retryAfterS = 1;
      try {
        const res = await fetch(`${this.base}/telemetry`, {
          method: 'POST',
          headers: { 'x-api-key': this.key, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(30000),
        });
        status = res.status;
        const text = await res.text();
        retryAfterS = Number(res.headers.get('retry-after') ?? 1) || 1;
        if (status !== 202 && status !== 429 && status !== 503)
          this.errors.push(`${device}#${batch}: ${status} ${text.slice(0, 200)}`);
      } catch {
        status = 0; // no answer: the batch may or may not be queued; sent again below
      }
      const w = this.window;
      w.latencies.push(now() - started);
      if (status === 202) {
        w.acceptedEvents += EVENTS;
        this.accepted.get(device)!.add(batch);
        return;
      }
      if (status === 429) w.s429++;
      else if (status === 503) w.s503++;
      else if (status === 0) w.noAnswer++;
      else {
        w.other++;
        return;
      }
      await sleep(Math.min(30, Math.max(0.2, retryAfterS)) * 1000);
    }
  }
}

/**
 * Stored events/s of CAPACITY_BATCHES batches from 4 devices, sent as fast as they are
 * taken, to a project of its own with the soak's rule (no webhooks): first request →
 * every batch applied.
 */
export async function measureCapacity(stack: Stack, db: Pool): Promise<number> {
  const tenantOf = await tenant(stack.apiUrl, 'soak-capacity', []);
  const clients = new Clients(stack.apiUrl, tenantOf.key, ['cap-0', 'cap-1', 'cap-2', 'cap-3']);
  const started = now();
  while (clients.sentBatches < CAPACITY_BATCHES) if (!clients.tick()) await sleep(5);
  await clients.settle(120000);
  for (;;) {
    const { rows } = await db.query(
      `SELECT coalesce(sum(ingest_seq), 0)::int AS n FROM devices WHERE project_id = $1`,
      [tenantOf.projectId],
    );
    if (rows[0].n >= CAPACITY_BATCHES) break;
    await sleep(50);
  }
  return (CAPACITY_BATCHES * EVENTS) / ((now() - started) / 1000);
}
