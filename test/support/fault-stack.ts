import { EnvSource, loadConfig } from '@app/config';
import { QUEUES, queuePrefix, redisOptionsFromUrl } from '@app/queue';
import { testConfigOverrides, testRunEnv } from '@app/testing';
import { Queue, QueueEvents } from 'bullmq';
import { ChildProcess } from 'node:child_process';
import { Pool } from 'pg';
import { RunningApi, startApi } from './api';
import { sleep } from './fixtures';
import { migratedDatabase, PrivatePostgres } from './private-services';
import { appEnv, exited, spawnApp } from './processes';
import { closeInOrder } from './shutdown';
import { TestReceiver } from './subscriber';
import { ProxyMode, TcpProxy } from './tcp-proxy';

/**
 * The whole pipeline on infrastructure a test may break, for model checks and chaos runs:
 * a private PostgreSQL cluster (so it can be restarted) and the shared Redis (under a
 * prefix of its own), each behind a {@link TcpProxy}; the api in this process; workers
 * as real child processes (`main.ts`, so a SIGKILL is real), each restarted after every
 * death like an orchestrator would; a webhook receiver. The test's own reads (a pg pool, queue
 * handles, queue events) go around the proxies and see through every fault.
 */

export type Link = 'postgres' | 'redis';
export const ALL_QUEUES = Object.values(QUEUES);

/** What the faults did, for the report and for the check that they bit. */
export interface FaultCounts {
  /** Per fault kind: injected, and injected while jobs were in flight. */
  injected: Record<string, number>;
  withWorkInFlight: Record<string, number>;
  /** Worker processes SIGKILLed with a job active, and those that died on their own. */
  killedMidJob: number;
  unexpectedExits: number;
  /** Jobs that BullMQ found stalled (their worker died or lost its lock) and ran again. */
  stalled: number;
  /** Jobs that failed an attempt (an attempt used, not an outage wait). */
  failedAttempts: number;
  /** Times a worker logged that jobs wait out an outage (once per outage per process). */
  outageWaits: number;
}

/** A worker child kept alive: restarted after any death, as Kubernetes would. */
class WorkerSupervisor {
  private child?: ChildProcess & { output: () => string };
  private restarting?: Promise<void>;
  private closing = false;
  /** Output of every life, kept for the outage count and for failure reports. */
  private readonly past: string[] = [];
  unexpectedExits = 0;
  /** The end of a self-exited worker's output, for the report. */
  readonly exitTails: string[] = [];

  constructor(private readonly env: EnvSource) {}

  start(): void {
    const child = spawnApp('worker', this.env);
    this.child = child;
    child.once('exit', (code, signal) => {
      this.past.push(child.output());
      if (this.child !== child || this.closing) return;
      // Died on its own (e.g. could not boot during an outage): counted, restarted.
      this.unexpectedExits++;
      this.exitTails.push(`code ${code}, signal ${signal}: ${child.output().slice(-1500)}`);
      this.past.push(`[worker exited by itself: code ${code}, signal ${signal}]\n`);
      this.child = undefined;
      this.restartAfter(1000);
    });
  }

  /** SIGKILLs the running worker (if any) and starts a new one after `downMs`. */
  async kill(downMs: number): Promise<boolean> {
    await this.restarting;
    const child = this.child;
    if (!child) return false;
    this.child = undefined;
    child.kill('SIGKILL');
    await exited(child);
    this.restartAfter(downMs);
    return true;
  }

  private restartAfter(ms: number): void {
    const previous = this.restarting ?? Promise.resolve();
    this.restarting = previous
      .then(() => sleep(ms))
      .then(() => {
        if (!this.closing) this.start();
      });
  }

  /** Waits for pending restarts: a worker process is running afterwards. */
  async running(): Promise<void> {
    for (let pending = this.restarting; pending; pending = this.restarting) {
      await pending;
      if (this.restarting === pending) this.restarting = undefined;
    }
    if (!this.child && !this.closing) this.start();
  }

  output(): string {
    return this.past.join('') + (this.child?.output() ?? '');
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.restarting?.catch(() => undefined);
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited(child), sleep(20000).then(() => null)]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited(child);
    }
  }
}

/** A cut that heals by itself: the link stays broken until the latest cut's end. */
class LinkCut {
  private healAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(readonly proxy: TcpProxy) {}

  cut(mode: Exclude<ProxyMode, 'pass'>, ms: number): void {
    this.proxy.setMode(mode);
    this.healAt = Math.max(this.healAt, Date.now() + ms);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.heal(), this.healAt - Date.now());
  }

  heal(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.healAt = 0;
    this.proxy.setMode('pass');
  }
}

export interface FaultStackOptions {
  /** Environment of the api and the worker, beyond the links and the prefix. */
  env?: EnvSource;
  /** Environment of the workers only. */
  workerEnv?: EnvSource;
  /** Worker processes (1 unless given). */
  workers?: number;
}

export class FaultStack {
  readonly faults: FaultCounts = {
    injected: {},
    withWorkInFlight: {},
    killedMidJob: 0,
    unexpectedExits: 0,
    stalled: 0,
    failedAttempts: 0,
    outageWaits: 0,
  };
  private restarts: Promise<void> = Promise.resolve();

  private constructor(
    readonly pg: PrivatePostgres,
    readonly db: Pool,
    readonly links: Record<Link, LinkCut>,
    readonly api: RunningApi,
    private readonly workers: WorkerSupervisor[],
    readonly receiver: TestReceiver,
    readonly queues: Queue[],
    private readonly events: QueueEvents[],
  ) {}

  static async start(opts: FaultStackOptions = {}): Promise<FaultStack> {
    const run = testRunEnv();
    // Own keys (BullMQ and counters) under the run's prefix: the global teardown deletes
    // them, and no other suite's worker, on another database, ever takes one of our jobs.
    const prefix = `${run.redisPrefix}:faults`;
    const pg = await PrivatePostgres.start();
    const started: Array<() => Promise<unknown>> = [() => pg.stop()];
    try {
      const url = await migratedDatabase(pg, 'faults_test');
      const db = new Pool({ connectionString: url, max: 4 });
      // Idle connections die with every restart; the next query opens a new one.
      db.on('error', () => undefined);
      started.unshift(() => db.end());
      const redis0 = new URL(run.redisUrl);
      const pgProxy = await TcpProxy.start({ host: '127.0.0.1', port: pg.port });
      started.unshift(() => pgProxy.close());
      const redisProxy = await TcpProxy.start({
        host: redis0.hostname,
        port: Number(redis0.port || 6379),
      });
      started.unshift(() => redisProxy.close());
      const env: EnvSource = {
        DATABASE_URL: pgProxy.url(url),
        REDIS_URL: redisProxy.url(run.redisUrl),
        REDIS_PREFIX: prefix,
        ...opts.env,
      };
      const api = await startApi(env);
      started.unshift(() => api.close());
      const workerEnv = appEnv({ LOG_LEVEL: 'warn', ...env, ...opts.workerEnv });
      const workers = Array.from(
        { length: opts.workers ?? 1 },
        () => new WorkerSupervisor(workerEnv),
      );
      for (const w of workers) w.start();
      started.unshift(() => Promise.all(workers.map((w) => w.close())));
      const receiver = await new TestReceiver().start();
      started.unshift(() => receiver.close());
      // Around the proxies: the test's view survives every fault.
      const direct = loadConfig(testConfigOverrides({ REDIS_PREFIX: prefix })).redis;
      const connection = redisOptionsFromUrl(direct.url);
      const queues = ALL_QUEUES.map(
        (name) => new Queue(name, { connection, prefix: queuePrefix(direct, name) }),
      );
      started.unshift(() => Promise.all(queues.map((q) => q.close())));
      const events = ALL_QUEUES.map(
        (name) => new QueueEvents(name, { connection, prefix: queuePrefix(direct, name) }),
      );
      started.unshift(() => Promise.all(events.map((e) => e.close())));
      const stack = new FaultStack(
        pg,
        db,
        { postgres: new LinkCut(pgProxy), redis: new LinkCut(redisProxy) },
        api,
        workers,
        receiver,
        queues,
        events,
      );
      for (const e of events) {
        e.on('stalled', () => stack.faults.stalled++);
        e.on('failed', () => stack.faults.failedAttempts++);
        e.on('error', () => undefined);
        await e.waitUntilReady();
      }
      return stack;
    } catch (err) {
      for (const stop of started) await stop().catch(() => undefined);
      throw err;
    }
  }

  /** Jobs not finished in any queue (waiting, active, delayed, prioritized). */
  async inFlight(): Promise<number> {
    let n = 0;
    for (const q of this.queues) {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      n += Object.values(counts).reduce((a, b) => a + b, 0);
    }
    return n;
  }

  /** Jobs a worker holds right now. */
  async active(): Promise<number> {
    let n = 0;
    for (const q of this.queues) n += (await q.getJobCounts('active')).active;
    return n;
  }

  private async count(kind: string): Promise<void> {
    this.faults.injected[kind] = (this.faults.injected[kind] ?? 0) + 1;
    if ((await this.inFlight()) > 0)
      this.faults.withWorkInFlight[kind] = (this.faults.withWorkInFlight[kind] ?? 0) + 1;
  }

  /** Breaks a link for `ms` (heals by itself; a later cut extends it). Returns at once. */
  async cut(link: Link, mode: 'reset' | 'blackhole', ms: number): Promise<void> {
    await this.count(`cut ${link} (${mode})`);
    this.links[link].cut(mode, ms);
  }

  /**
   * Restarts PostgreSQL like a crash (`immediate`: recovery from the WAL), down for
   * `downMs`, in the background: the test goes on meanwhile. Restarts run one at a time.
   */
  async restartPostgres(downMs: number): Promise<void> {
    await this.count('restart postgres');
    this.restarts = this.restarts.then(() => this.pg.restart({ mode: 'immediate', downMs }));
  }

  /**
   * SIGKILLs worker `index` (modulo their number), once a job is active if one comes
   * within `waitActiveMs`, and starts a new one `downMs` later (in the background).
   */
  async killWorker(index: number, waitActiveMs: number, downMs: number): Promise<void> {
    const deadline = Date.now() + waitActiveMs;
    let active = await this.active().catch(() => 0);
    while (active === 0 && Date.now() < deadline) {
      await sleep(20);
      active = await this.active().catch(() => 0);
    }
    await this.count('kill worker');
    const worker = this.workers[index % this.workers.length];
    if ((await worker.kill(downMs)) && active > 0) this.faults.killedMidJob++;
  }

  /** Ends every fault: links pass, PostgreSQL is up, every worker runs. */
  async heal(): Promise<void> {
    this.links.postgres.heal();
    this.links.redis.heal();
    await this.restarts;
    for (const w of this.workers) await w.running();
  }

  /** Refreshes the counts that come from the worker's output. */
  tally(): FaultCounts {
    const out = this.workerOutput();
    this.faults.outageWaits = out.split('jobs wait for it without using their attempts').length - 1;
    this.faults.unexpectedExits = this.workers.reduce((n, w) => n + w.unexpectedExits, 0);
    return this.faults;
  }

  /** How the workers that exited by themselves ended (their output's tail). */
  exitTails(): string[] {
    return this.workers.flatMap((w) => w.exitTails);
  }

  workerOutput(): string {
    return this.workers.map((w, i) => `=== worker ${i} ===\n${w.output()}`).join('\n');
  }

  async close(): Promise<void> {
    this.links.postgres.heal();
    this.links.redis.heal();
    await closeInOrder([
      ['pending restarts', () => this.restarts.catch(() => undefined)],
      ['workers', () => Promise.all(this.workers.map((w) => w.close()))],
      ['api', () => this.api.close()],
      ['receiver', () => this.receiver.close()],
      ['queue events', () => Promise.all(this.events.map((e) => e.close()))],
      ['queues', () => Promise.all(this.queues.map((q) => q.close()))],
      [
        'proxies',
        () => Promise.all([this.links.postgres.proxy.close(), this.links.redis.proxy.close()]),
      ],
      ['pool', () => this.db.end()],
      ['postgres', () => this.pg.stop()],
    ]);
  }
}
