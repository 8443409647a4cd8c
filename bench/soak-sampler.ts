/**
 * The chaos soak's 10-second samples (throughput, queues, latency, memory, CPU), its fault
 * schedule and injection, and each fault's recovery read from the samples.
 */
import { QUEUES } from '@app/queue';
import { Queue } from 'bullmq';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Pool } from 'pg';
import { exited } from '../test/support/processes';
import { percentile } from './common';
import {
  DEVICES,
  EVENTS,
  FAULT_KINDS,
  FaultKind,
  GAP_MAX_S,
  GAP_MIN_S,
  now,
  PG_DOWN_MS,
  REDIS_DOWN_MS,
  SAMPLE_S,
  SOAK_S,
  TAIL_S,
  WARMUP_S,
} from './soak-settings';
import { Clients, emptyCounts, rssOf, Stack } from './soak-stack';

export interface Sample {
  /** Seconds since the load started, at the window's end. */
  atS: number;
  phase: 'load' | 'drain';
  acceptedPerS: number;
  /** Webhook requests received. */
  deliveredPerS: number;
  /** Batches applied (devices.ingest_seq) × 5,000 per second; null while PostgreSQL is away. */
  storedPerS: number | null;
  /** waiting + active + delayed + prioritized, per queue; null while Redis is away. */
  depths: Record<string, number> | null;
  apiP99Ms: number | null;
  s429: number;
  s503: number;
  noAnswer: number;
  rss: Record<string, number>;
  /** Per worker, from its /metrics: batches stored in the window and their mean time. */
  workers: Record<
    string,
    {
      batches: number;
      /** Tries of a batch whose predecessor was not stored yet (each one a row lock). */
      waits: number;
      meanMs: number | null;
      /** Jobs waiting for PostgreSQL or Redis to answer again. */
      waiting: number;
    }
  >;
  /** The machine's 1-minute load average. */
  loadAvg: number;
  /**
   * CPU used in the window, in cores: by what the soak runs (api, workers, PostgreSQL and
   * its backends, Redis, this process) and by everything else on the machine. On a shared
   * box the second says when a slow window was somebody else's doing.
   */
  cpu: { ours: number; others: number } | null;
  /** PostgreSQL checkpoints that began in the window. */
  checkpoints: number | null;
  faults: string[];
}

interface WorkerCounters {
  stored: number;
  waits: number;
  durationSum: number;
  durationCount: number;
  waiting: number;
}

/** The ingest counters of a worker's /metrics page; null if it does not answer. */
async function scrape(port: number): Promise<WorkerCounters | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(3000),
    });
    const page = await res.text();
    const sum = (re: RegExp) =>
      page
        .split('\n')
        .filter((l) => re.test(l))
        .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    return {
      stored: sum(/^telemetry_ingest_batches_total\{[^}]*result="stored"/),
      waits: sum(/^telemetry_ingest_batches_total\{[^}]*result="wait"/),
      durationSum: sum(/^telemetry_ingest_batch_duration_seconds_sum/),
      durationCount: sum(/^telemetry_ingest_batch_duration_seconds_count/),
      waiting: sum(/^worker_jobs_waiting_on_dependencies\{/),
    };
  } catch {
    return null;
  }
}

interface CpuSnapshot {
  at: number;
  /** Busy CPU seconds of the whole machine. */
  machine: number;
  /** CPU seconds per process of ours. */
  procs: Map<number, number>;
}

const TICKS_PER_S = 100; // CLK_TCK on Linux

/**
 * CPU seconds of the machine and of `roots` and PostgreSQL (the postmaster with its reaped
 * children, and each live backend), from /proc.
 */
function cpuSnapshot(roots: number[], postmaster: number | undefined): CpuSnapshot {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const t = fields.map(Number);
  // user nice system idle iowait irq softirq steal
  const machine = (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / TICKS_PER_S;
  const procs = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // After the command name in parentheses: state ppid … utime(12th) stime cutime cstime.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const own = Number(rest[11]) + Number(rest[12]);
    if (pid === postmaster)
      procs.set(pid, (own + Number(rest[13]) + Number(rest[14])) / TICKS_PER_S);
    else if (roots.includes(pid) || (postmaster !== undefined && ppid === postmaster))
      procs.set(pid, own / TICKS_PER_S);
  }
  return { at: now(), machine, procs };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([
    p.catch(() => null),
    new Promise<null>((r) => setTimeout(() => r(null), ms).unref()),
  ]);
}

export class Sampler {
  readonly samples: Sample[] = [];
  private lastSeq?: { atS: number; seq: number };
  private pendingFaults: string[] = [];
  private readonly lastCounters = new Map<string, WorkerCounters>();
  private lastCheckpoints?: number;
  private lastDelivered = 0;
  private lastCpu?: CpuSnapshot;

  constructor(
    private readonly stack: Stack,
    private readonly db: Pool,
    private readonly queues: Queue[],
    private readonly clients: Clients,
    private readonly projectId: string,
    /** Webhook requests the receiver has had so far. */
    private readonly delivered: () => number,
  ) {
    this.cpuSince(); // the first window's starting point
  }

  /** Cores used since the last sample: ours (processes present both times, or new) and the rest. */
  private cpuSince(): Sample['cpu'] {
    const roots = [process.pid, this.stack.redis?.pid, ...this.stack.alive.map((p) => p.app.pid)];
    const snap = cpuSnapshot(
      roots.filter((x): x is number => x !== undefined),
      this.stack.pg?.pid,
    );
    const before = this.lastCpu;
    this.lastCpu = snap;
    if (!before) return null;
    const seconds = (snap.at - before.at) / 1000;
    let ours = 0;
    for (const [pid, cpu] of snap.procs) ours += Math.max(0, cpu - (before.procs.get(pid) ?? 0));
    const machine = snap.machine - before.machine;
    return { ours: ours / seconds, others: Math.max(0, machine - ours) / seconds };
  }

  noteFault(label: string): void {
    this.pendingFaults.push(label);
  }

  /** Batches applied to the soak's devices, and PostgreSQL's checkpoints so far. */
  async appliedBatches(): Promise<{ seq: number; checkpoints: number } | null> {
    return withTimeout(
      this.db
        .query(
          `SELECT (SELECT coalesce(sum(ingest_seq), 0)::int FROM devices WHERE project_id = $1) AS seq,
                  (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)::int AS checkpoints`,
          [this.projectId],
        )
        .then((r) => r.rows[0] as { seq: number; checkpoints: number }),
      4000,
    );
  }

  async depths(): Promise<Record<string, number> | null> {
    const counts = await Promise.all(
      this.queues.map((q) =>
        withTimeout(q.getJobCounts('waiting', 'active', 'delayed', 'prioritized'), 4000),
      ),
    );
    if (counts.some((c) => c === null)) return null;
    return Object.fromEntries(
      this.queues.map((q, i) => [
        q.name,
        Object.values(counts[i]!).reduce((a: number, b: number) => a + b, 0),
      ]),
    );
  }

  async take(atS: number, phase: Sample['phase']): Promise<Sample> {
    const w = this.clients.window;
    this.clients.window = emptyCounts();
    const workers = this.stack.workers;
    const [applied, depths, counters] = await Promise.all([
      this.appliedBatches(),
      this.depths(),
      Promise.all(workers.map((p) => scrape(p.port))),
    ]);
    const perWorker: Sample['workers'] = {};
    workers.forEach((p, i) => {
      const c = counters[i];
      if (!c) return;
      const before = this.lastCounters.get(p.name) ?? {
        stored: 0,
        waits: 0,
        durationSum: 0,
        durationCount: 0,
        waiting: 0,
      };
      const n = c.durationCount - before.durationCount;
      perWorker[p.name] = {
        batches: c.stored - before.stored,
        waits: c.waits - before.waits,
        meanMs: n > 0 ? ((c.durationSum - before.durationSum) / n) * 1000 : null,
        waiting: c.waiting,
      };
      this.lastCounters.set(p.name, c);
    });
    const seq = applied?.seq ?? null;
    let checkpoints: number | null = null;
    if (applied) {
      // Counted since the server started: a crash restart begins again from 0.
      checkpoints = Math.max(0, applied.checkpoints - (this.lastCheckpoints ?? 0));
      if (applied.checkpoints < (this.lastCheckpoints ?? 0)) checkpoints = applied.checkpoints;
      this.lastCheckpoints = applied.checkpoints;
    }
    let storedPerS: number | null = null;
    if (seq !== null) {
      const from = this.lastSeq ?? { atS: 0, seq: 0 };
      storedPerS = ((seq - from.seq) * EVENTS) / Math.max(0.001, atS - from.atS);
      this.lastSeq = { atS, seq };
    }
    const rss: Record<string, number> = {};
    for (const p of this.stack.alive) {
      const bytes = rssOf(p.app.pid);
      if (bytes !== undefined) rss[p.name] = bytes;
    }
    const lat = w.latencies.sort((a, b) => a - b);
    const delivered = this.delivered();
    const sample: Sample = {
      atS,
      phase,
      acceptedPerS: w.acceptedEvents / SAMPLE_S,
      deliveredPerS: (delivered - this.lastDelivered) / SAMPLE_S,
      storedPerS,
      depths,
      apiP99Ms: lat.length ? percentile(lat, 99) : null,
      s429: w.s429,
      s503: w.s503,
      noAnswer: w.noAnswer,
      rss,
      workers: perWorker,
      loadAvg: loadavg()[0],
      cpu: this.cpuSince(),
      checkpoints,
      faults: this.pendingFaults,
    };
    this.lastDelivered = delivered;
    this.samples.push(sample);
    this.pendingFaults = [];
    return sample;
  }
}

export const ingestDepth = (s: Sample) => s.depths?.[QUEUES.TELEMETRY_INGEST] ?? null;

export interface Fault {
  n: number;
  kind: FaultKind;
  atS: number;
  target: string;
  /** How long the fault itself took (kill and restart), ms. */
  tookMs: number;
  error?: string;
  /** Filled in after the run. */
  baselineStoredPerS?: number;
  ingestBand?: number;
  otherBand?: number;
  recoveryS?: number | null;
  /** [ingest, other queues]. */
  maxDepths?: [number, number];
  depthsAtRecovery?: [number | null, number | null] | null;
}

export async function inject(kind: FaultKind, stack: Stack, rand: () => number): Promise<string> {
  switch (kind) {
    case 'worker': {
      const workers = stack.workers;
      const victim = workers[Math.floor(rand() * workers.length)];
      if (!victim) throw new Error('no worker is running');
      victim.expectedExit = true;
      victim.app.kill('SIGKILL');
      await exited(victim.app);
      // The replacement boots while the run goes on; its readiness is not waited for here.
      void stack
        .startWorker()
        .catch((err: Error) => stack.crashes.push(`replacement worker: ${err.message}`));
      return victim.name;
    }
    case 'postgres':
      await stack.pg!.restart({ mode: 'immediate', downMs: PG_DOWN_MS });
      return `immediate restart, down ${PG_DOWN_MS} ms`;
    case 'redis':
      await stack.redis!.restart({ kill: 'SIGKILL', downMs: REDIS_DOWN_MS });
      return `SIGKILL, down ${REDIS_DOWN_MS} ms, AOF`;
  }
}

/** The fault times (seconds into the load) and kinds: every kind in each run of three. */
export function schedule(rand: () => number): Array<{ atS: number; kind: FaultKind }> {
  const out: Array<{ atS: number; kind: FaultKind }> = [];
  let bag: FaultKind[] = [];
  let at = Math.max(WARMUP_S, 0);
  for (;;) {
    at += GAP_MIN_S + rand() * (GAP_MAX_S - GAP_MIN_S);
    if (at > SOAK_S - TAIL_S) return out;
    if (bag.length === 0) {
      bag = [...FAULT_KINDS];
      for (let i = bag.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [bag[i], bag[j]] = [bag[j], bag[i]];
      }
    }
    out.push({ atS: Math.round(at * 10) / 10, kind: bag.shift()! });
  }
}

/** Every queue but ingest: evaluation, fan-out and delivery. */
export const otherDepth = (s: Sample) =>
  s.depths
    ? Object.entries(s.depths)
        .filter(([q]) => q !== QUEUES.TELEMETRY_INGEST)
        .reduce((a, [, n]) => a + n, 0)
    : null;
export const present = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);

/**
 * Recovery of each fault: the first load window that starts after it where stored
 * events/s is at least 90% of the pre-fault level and the queues are back in their
 * pre-fault bands, and the window after it too. Pre-fault: the last six windows before
 * the fault, after warm-up, outside any earlier fault's recovery: the median stored/s;
 * bands = their highest depth + one batch per device (ingest), + two per device (the
 * other queues together). The recovery time runs from the fault to that window's end:
 * an upper bound, to the 10 s of a window.
 */
export function recoveries(faults: Fault[], samples: Sample[]): void {
  const load = samples.filter((s) => s.phase === 'load');
  const loadS = load.length ? load[load.length - 1].atS : 0;
  const disturbed: Array<[number, number]> = [];
  for (const f of faults) {
    const before = load
      .filter((s) => s.atS - SAMPLE_S >= WARMUP_S && s.atS <= f.atS)
      .filter((s) => !disturbed.some(([a, b]) => s.atS > a && s.atS - SAMPLE_S < b))
      .slice(-6);
    const stored = present(before.map((s) => s.storedPerS)).sort((a, b) => a - b);
    const base = stored.length ? stored[Math.floor(stored.length / 2)] : 0;
    const ingestBand = Math.max(0, ...present(before.map(ingestDepth))) + DEVICES;
    const otherBand = Math.max(0, ...present(before.map(otherDepth))) + 2 * DEVICES;
    const healthy = (s: Sample | undefined) =>
      s !== undefined &&
      s.storedPerS !== null &&
      s.storedPerS >= 0.9 * base &&
      ingestDepth(s) !== null &&
      ingestDepth(s)! <= ingestBand &&
      otherDepth(s)! <= otherBand;
    f.baselineStoredPerS = Math.round(base);
    f.ingestBand = ingestBand;
    f.otherBand = otherBand;
    const after = load.filter((s) => s.atS - SAMPLE_S >= f.atS);
    const i = after.findIndex((s, k) => healthy(s) && healthy(after[k + 1]));
    const hit = i >= 0 ? after[i] : undefined;
    f.recoveryS = hit ? Math.round((hit.atS - f.atS) * 10) / 10 : null;
    f.depthsAtRecovery = hit ? [ingestDepth(hit), otherDepth(hit)] : null;
    const until = hit ? hit.atS : loadS;
    const during = load.filter((s) => s.atS > f.atS && s.atS <= until);
    f.maxDepths = [
      Math.max(0, ...present(during.map(ingestDepth))),
      Math.max(0, ...present(during.map(otherDepth))),
    ];
    disturbed.push([f.atS, until]);
  }
}
