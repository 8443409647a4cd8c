/**
 * The chaos soak's verdicts after the drain (events, alerts, deliveries, memory) and its
 * markdown tables.
 */
import { emptyState, evaluate, EvaluationState } from '@app/rules';
import { Queue } from 'bullmq';
import { Pool } from 'pg';
import { Fault, ingestDepth, otherDepth, present, Sample } from './soak-sampler';
import { EVENTS, now, RSS_MAX_RATIO, RULE, sleep, T0, WEBHOOKS } from './soak-settings';
import { Clients, Proc, Receiver, Tenant } from './soak-stack';

export interface Check {
  name: string;
  expected: string;
  found: string;
  pass: boolean;
}

/** Every accepted batch stored whole, once; nothing else stored; nothing set aside. */
export async function checkEvents(db: Pool, t: Tenant, clients: Clients): Promise<Check[]> {
  const { rows } = await db.query(
    `SELECT d.external_id AS device,
            floor((extract(epoch FROM t.ts) * 1000 - $2) / $3)::int AS batch,
            count(*)::int AS n, count(DISTINCT t.ts)::int AS distinct_ts
       FROM telemetry t JOIN devices d ON d.id = t.device_id
      WHERE d.project_id = $1
      GROUP BY 1, 2`,
    [t.projectId, T0, EVENTS * 1000],
  );
  const unresolved = new Set(clients.unresolved.map((u) => `${u.device}#${u.batch}`));
  let stored = 0;
  let doubled = 0;
  let unexpected = 0;
  let partial = 0;
  const found = new Set<string>();
  for (const r of rows as Array<{
    device: string;
    batch: number;
    n: number;
    distinct_ts: number;
  }>) {
    stored += r.n;
    doubled += r.n - r.distinct_ts;
    const key = `${r.device}#${r.batch}`;
    found.add(key);
    const accepted = clients.accepted.get(r.device)?.has(r.batch) ?? false;
    if (!accepted && !unresolved.has(key)) unexpected += r.n;
    else if (r.distinct_ts !== EVENTS) partial++;
  }
  let missing = 0;
  for (const [device, batches] of clients.accepted)
    for (const b of batches) if (!found.has(`${device}#${b}`)) missing++;
  const [{ n: rejected }] = (
    await db.query(`SELECT count(*)::int AS n FROM telemetry_rejections WHERE project_id = $1`, [
      t.projectId,
    ])
  ).rows;
  const accepted = clients.acceptedEvents;
  return [
    {
      name: 'events: accepted (202) vs stored',
      expected: accepted.toLocaleString('en-US'),
      found: `${stored.toLocaleString('en-US')} (missing batches ${missing}, partial ${partial}, doubled rows ${doubled}, unexpected rows ${unexpected}, set aside ${rejected}, unresolved batches ${clients.unresolved.length})`,
      pass:
        missing === 0 &&
        partial === 0 &&
        doubled === 0 &&
        unexpected === 0 &&
        rejected === 0 &&
        (clients.unresolved.length > 0 || stored === accepted),
    },
    {
      name: 'client answers other than 202/429/503',
      expected: '0',
      found: `${clients.errors.length}${clients.errors.length ? `: ${clients.errors.slice(0, 3).join('; ')}` : ''}`,
      pass: clients.errors.length === 0,
    },
  ];
}

/** The pure evaluator over each device's stored readings, read back in ts order in pages. */
async function expectedAlerts(
  db: Pool,
  deviceId: string,
): Promise<Array<{ openedAt: number; resolvedAt: number | null }>> {
  let state: EvaluationState = emptyState();
  const alerts: Array<{ openedAt: number; resolvedAt: number | null }> = [];
  let after = new Date(0);
  for (;;) {
    const { rows } = await db.query(
      `SELECT ts, (data ->> 't')::float8 AS t FROM telemetry
        WHERE device_id = $1 AND ts > $2 AND data ? 't'
        ORDER BY ts LIMIT 20000`,
      [deviceId, after],
    );
    if (rows.length === 0) return alerts;
    const readings = (rows as Array<{ ts: Date; t: number }>).map((r) => ({
      ts: r.ts.getTime(),
      data: { t: r.t },
    }));
    const result = evaluate(RULE, state, readings);
    state = result.state;
    for (const tr of result.transitions) {
      if (tr.kind === 'open') alerts.push({ openedAt: tr.at, resolvedAt: null });
      else alerts[alerts.length - 1].resolvedAt = tr.at;
    }
    after = rows[rows.length - 1].ts as Date;
  }
}

export async function checkAlerts(
  db: Pool,
  t: Tenant,
  receiver: Receiver,
): Promise<{ checks: Check[]; expectedEvents: number }> {
  const devices = (
    await db.query(`SELECT id, external_id FROM devices WHERE project_id = $1`, [t.projectId])
  ).rows as Array<{ id: string; external_id: string }>;
  let expectedOpen = 0;
  let expectedResolved = 0;
  let presentOpen = 0;
  let presentResolved = 0;
  const mismatches: string[] = [];
  for (const d of devices) {
    const want = await expectedAlerts(db, d.id);
    const { rows } = await db.query(
      `SELECT triggered_at, resolved_at FROM alerts WHERE device_id = $1 AND rule_id = $2 ORDER BY triggered_at`,
      [d.id, t.ruleId],
    );
    const have = (rows as Array<{ triggered_at: Date; resolved_at: Date | null }>).map((r) => ({
      openedAt: r.triggered_at.getTime(),
      resolvedAt: r.resolved_at?.getTime() ?? null,
    }));
    expectedOpen += want.length;
    expectedResolved += want.filter((a) => a.resolvedAt !== null).length;
    presentOpen += have.length;
    presentResolved += have.filter((a) => a.resolvedAt !== null).length;
    for (let i = 0; i < Math.max(want.length, have.length); i++) {
      const w = want[i];
      const h = have[i];
      if (w?.openedAt !== h?.openedAt || w?.resolvedAt !== h?.resolvedAt) {
        mismatches.push(
          `${d.external_id}[${i}]: expected ${JSON.stringify(w)}, found ${JSON.stringify(h)}`,
        );
        break;
      }
    }
  }
  const events = (
    await db.query(`SELECT id, type FROM alert_events WHERE project_id = $1`, [t.projectId])
  ).rows as Array<{ id: string; type: string }>;
  const expectedEvents = expectedOpen + expectedResolved;
  const ids = new Set(events.map((e) => e.id));
  let notReceived = 0;
  for (const e of events)
    for (const hook of WEBHOOKS) if (!receiver.seen.has(`${hook} ${e.id}`)) notReceived++;
  let strangers = 0;
  for (const key of receiver.seen.keys()) if (!ids.has(key.split(' ')[1])) strangers++;
  const expectedDeliveries = expectedEvents * WEBHOOKS.length;
  return {
    expectedEvents,
    checks: [
      {
        name: 'alerts: expected (pure evaluator over stored readings) vs present',
        expected: `${expectedOpen} opened, ${expectedResolved} resolved`,
        found: `${presentOpen} opened, ${presentResolved} resolved${mismatches.length ? `; first differences: ${mismatches.slice(0, 3).join('; ')}` : ''}`,
        pass:
          mismatches.length === 0 &&
          expectedOpen === presentOpen &&
          expectedResolved === presentResolved,
      },
      {
        name: 'alert events (outbox)',
        expected: String(expectedEvents),
        found: String(events.length),
        pass: events.length === expectedEvents,
      },
      {
        name: `deliveries: alert events × ${WEBHOOKS.length} webhooks vs received (distinct webhook-id per webhook)`,
        expected: String(expectedDeliveries),
        found: `${receiver.distinct} (not received ${notReceived}, unknown ${strangers}; duplicates seen ${receiver.duplicates}, allowed: at least once)`,
        pass: receiver.distinct === expectedDeliveries && notReceived === 0 && strangers === 0,
      },
    ],
  };
}

/** Waits until every queue is empty, every cursor at its last reading, no delivery pending. */
export async function drain(
  db: Pool,
  queues: Queue[],
  t: Tenant,
  receiver: Receiver,
  deadlineMs: number,
): Promise<{ drainedS: number | null; state: string }> {
  const started = now();
  let state = '';
  while (now() < deadlineMs) {
    try {
      const counts = await Promise.all(
        queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')),
      );
      const queued = counts.reduce(
        (a, c) => a + Object.values(c).reduce((x: number, y: number) => x + y, 0),
        0,
      );
      const {
        rows: [r],
      } = await db.query(
        `SELECT (SELECT count(*)::int FROM devices d WHERE d.project_id = $1
                   AND d.evaluated_until IS DISTINCT FROM (SELECT max(ts) FROM telemetry t WHERE t.device_id = d.id)) AS behind,
                (SELECT count(*)::int FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending') AS pending,
                (SELECT count(*)::int FROM alert_events WHERE project_id = $1 AND dispatched_at IS NULL) AS undispatched,
                (SELECT count(*)::int FROM alert_events WHERE project_id = $1) AS events`,
        [t.projectId],
      );
      const received = receiver.distinct;
      state = `queued ${queued}, devices behind ${r.behind}, deliveries pending ${r.pending}, events undispatched ${r.undispatched}, received ${received}/${r.events * WEBHOOKS.length}`;
      if (
        queued === 0 &&
        r.behind === 0 &&
        r.pending === 0 &&
        r.undispatched === 0 &&
        received >= r.events * WEBHOOKS.length
      )
        return { drainedS: (now() - started) / 1000, state };
    } catch (err) {
      state = `probe failed: ${(err as Error).message}`;
    }
    await sleep(500);
  }
  return { drainedS: null, state };
}

/**
 * Each process's own trend: the lowest RSS of its last minute under load against the
 * lowest of its second minute (the first is warm-up), for every process that ran at least
 * three minutes of the load (workers killed early and their fresh replacements are too
 * short). The lowest, because a worker's RSS climbs ~150 MB between major collections and
 * falls back after one (a sawtooth of a few minutes): what a leak raises is the floor.
 */
export function rssCheck(samples: Sample[], procs: Proc[], loadStarted: number): Check {
  const load = samples.filter((s) => s.phase === 'load');
  const loadS = load.length ? load[load.length - 1].atS : 0;
  const ratios: string[] = [];
  let pass = true;
  for (const p of procs) {
    const fromS = Math.max(0, (p.startedAt - loadStarted) / 1000);
    const toS =
      p.exitedAt === undefined ? loadS : Math.min(loadS, (p.exitedAt - loadStarted) / 1000);
    if (toS - fromS < 180) continue;
    const floor = (a: number, b: number) =>
      Math.min(
        ...present(load.filter((s) => s.atS > a && s.atS <= b).map((s) => s.rss[p.name] ?? null)),
      );
    const first = floor(fromS + 60, fromS + 120);
    const last = floor(toS - 60, toS);
    if (!Number.isFinite(first) || !Number.isFinite(last)) continue;
    const r = last / first;
    ratios.push(`${p.name} ${r.toFixed(2)} (${mb(first)} → ${mb(last)} MB)`);
    if (r > RSS_MAX_RATIO) pass = false;
  }
  return {
    name: 'RSS: lowest of the last minute ÷ lowest of the second, per process',
    expected: `≤ ${RSS_MAX_RATIO} each`,
    found: ratios.join(', ') || `n/a: no process ran 180 s of the ${fmt(loadS)} s load`,
    pass,
  };
}

export const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '–'
    : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mb = (bytes: number | undefined) => (bytes === undefined ? '–' : fmt(bytes / 2 ** 20));

export function windowTable(samples: Sample[], workerNames: string[]): string {
  const head = [
    't (s)',
    'accepted/s',
    'stored/s',
    'ingest depth',
    'other queues',
    'webhooks/s',
    'api p99 ms',
    '429',
    '503',
    'no answer',
    'RSS api MB',
    ...workerNames.map((w) => `RSS ${w} MB`),
    'ingest waits',
    'CPU cores: ours / others',
    'checkpoints',
    'fault',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const s of samples)
    lines.push(
      `| ${[
        `${fmt(s.atS)}${s.phase === 'drain' ? ' (drain)' : ''}`,
        fmt(s.acceptedPerS),
        fmt(s.storedPerS),
        fmt(ingestDepth(s)),
        fmt(otherDepth(s)),
        fmt(s.deliveredPerS, 1),
        fmt(s.apiP99Ms),
        s.s429,
        s.s503,
        s.noAnswer,
        mb(s.rss.api),
        ...workerNames.map((w) => mb(s.rss[w])),
        Object.values(s.workers).reduce((n, w) => n + w.waits, 0),
        s.cpu ? `${s.cpu.ours.toFixed(1)} / ${s.cpu.others.toFixed(1)}` : '–',
        fmt(s.checkpoints),
        s.faults.join(', '),
      ].join(' | ')} |`,
    );
  return lines.join('\n');
}

export function faultTable(faults: Fault[]): string {
  const lines = [
    '| # | at (s) | fault | took (ms) | pre-fault stored/s | bands: ingest / other queues | max depth: ingest / other | recovery (s) | depth at recovery: ingest / other |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const f of faults)
    lines.push(
      `| ${f.n} | ${fmt(f.atS, 1)} | ${f.kind}: ${f.target}${f.error ? ` (error: ${f.error})` : ''} | ${fmt(f.tookMs)} | ${fmt(f.baselineStoredPerS)} | ≤ ${f.ingestBand} / ≤ ${f.otherBand} | ${f.maxDepths?.map((d) => fmt(d)).join(' / ')} | ${f.recoveryS === null ? 'not recovered' : fmt(f.recoveryS)} | ${f.depthsAtRecovery ? f.depthsAtRecovery.map((d) => fmt(d)).join(' / ') : '–'} |`,
    );
  return lines.join('\n');
}
