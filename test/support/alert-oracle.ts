import { emptyState, evaluate, EvaluationState, Reading, RuleSpec, WindowEntry } from '@app/rules';

/**
 * The oracle of the alert model check (test/integration/alert-oracle.int-spec.ts): what
 * the documented semantics say a device's stored readings and alerts must be, from the
 * batches it had accepted, in the order it sent them. Pure: no I/O, nothing of Nest.
 *
 * Storage (docs/api.md, docs/telemetry-schema.md): a device's batches are applied in the
 * order the api accepted them; `(device, ts)` is a reading's identity and the first
 * occurrence wins, within a batch and across batches (`ON CONFLICT DO NOTHING`).
 *
 * Evaluation (docs/rules.md): every reading is evaluated once, in `ts` order, except late
 * ones (a `ts` at or before what was already evaluated for the device). What "already
 * evaluated" is depends on when evaluations ran: an evaluation (in the storing
 * transaction, or a queued one) reads every stored reading after the device's cursor and
 * moves the cursor to the newest of them, and it runs between two batches, never inside
 * one (both hold the device row). So the product may evaluate after any subset of the
 * batch boundaries, and the oracle accepts the alerts when some such schedule of
 * evaluation rounds gives exactly them, through the pure evaluator.
 */

/** One reading as sent: `ts` in epoch milliseconds. */
export type OracleReading = Reading;

export interface StoredRow {
  ts: number;
  data: Record<string, unknown>;
  /** Index of the batch (in apply order) whose copy was stored. */
  batch: number;
}

/** The rows a device must have once its batches are applied in order: by ts. */
export function expectedRows(batches: OracleReading[][]): Map<number, StoredRow> {
  const rows = new Map<number, StoredRow>();
  batches.forEach((events, batch) => {
    for (const e of events) if (!rows.has(e.ts)) rows.set(e.ts, { ts: e.ts, data: e.data, batch });
  });
  return rows;
}

/** An alert as the oracle compares it: times in epoch ms, the window that opened it. */
export interface OracleAlert {
  triggeredAt: number;
  resolvedAt: number | null;
  window: WindowEntry[];
}

type Step = { kind: 'open'; at: number; window: WindowEntry[] } | { kind: 'resolve'; at: number };

function stepsOf(alerts: OracleAlert[]): Step[] {
  const steps: Step[] = [];
  for (const a of alerts) {
    steps.push({ kind: 'open', at: a.triggeredAt, window: a.window });
    if (a.resolvedAt !== null) steps.push({ kind: 'resolve', at: a.resolvedAt });
  }
  return steps.sort((x, y) => x.at - y.at);
}

/** The alerts a sequence of transitions of one rule describes. */
export function alertsOf(transitions: Step[]): OracleAlert[] {
  const alerts: OracleAlert[] = [];
  for (const t of transitions) {
    if (t.kind === 'open') alerts.push({ triggeredAt: t.at, resolvedAt: null, window: t.window });
    else alerts[alerts.length - 1].resolvedAt = t.at;
  }
  return alerts;
}

const sameStep = (a: Step, b: Step): boolean =>
  a.kind === b.kind &&
  a.at === b.at &&
  (a.kind === 'resolve' || JSON.stringify(a.window) === JSON.stringify((b as typeof a).window));

export interface ScheduleMatch {
  /** Batch indexes (exclusive ends) after which an evaluation round ran. */
  rounds: number[];
  /** Stored readings that were late under that schedule (not evaluated). */
  late: number;
}

export interface ScheduleMismatch {
  /** Alerts per rule when every batch is evaluated on its own (the storing transaction). */
  perBatch: OracleAlert[][];
  /** Alerts per rule when one evaluation reads everything at the end. */
  oneRound: OracleAlert[][];
  /** The newest cursor up to which some schedule agreed with the observed alerts. */
  agreedUntil: number | null;
}

/**
 * Searches the evaluation schedules (rounds at batch boundaries, the last after the last
 * batch) for one under which the pure evaluator gives exactly `observed[r]` for each
 * rule `r` (alerts with their open, resolve and window). Depth-first, pruned as soon as a
 * round's transitions disagree with the observed ones up to its cursor (later rounds only
 * see newer readings), and never visiting the same (boundary, evaluator states) twice.
 */
export function matchSchedule(
  rules: RuleSpec[],
  batches: OracleReading[][],
  observed: OracleAlert[][],
): ScheduleMatch | ScheduleMismatch {
  const rows = [...expectedRows(batches).values()];
  // The cursor after a round ending at boundary i: the newest ts stored so far.
  const prefixMax: number[] = [-Infinity];
  for (const events of batches)
    prefixMax.push(Math.max(prefixMax[prefixMax.length - 1], ...events.map((e) => e.ts)));
  const want = observed.map(stepsOf);
  const m = batches.length;
  const dead = new Set<string>();
  let agreedUntil: number | null = null;

  const roundReadings = (from: number, to: number): OracleReading[] =>
    rows
      .filter((r) => r.batch >= from && r.batch < to && r.ts > prefixMax[from])
      .sort((a, b) => a.ts - b.ts)
      .map((r) => ({ ts: r.ts, data: r.data }));

  const search = (
    from: number,
    states: EvaluationState[],
    done: number[],
    rounds: number[],
    late: number,
  ): ScheduleMatch | null => {
    if (from === m) return done.every((n, r) => n === want[r].length) ? { rounds, late } : null;
    const key = `${from}|${JSON.stringify(states)}`;
    if (dead.has(key)) return null;
    for (let to = from + 1; to <= m; to++) {
      const readings = roundReadings(from, to);
      const cursor = prefixMax[to];
      const next: EvaluationState[] = [];
      const counts: number[] = [];
      let agrees = true;
      for (let r = 0; r < rules.length && agrees; r++) {
        const result = evaluate(rules[r], states[r], readings);
        const upTo = want[r].filter((s) => s.at <= cursor);
        const steps = result.transitions;
        agrees =
          upTo.length === done[r] + steps.length &&
          steps.every((s, i) => sameStep(s, upTo[done[r] + i]));
        next.push(result.state);
        counts.push(upTo.length);
      }
      if (!agrees) continue;
      if (agreedUntil === null || cursor > agreedUntil) agreedUntil = cursor;
      const stored = rows.filter((r) => r.batch >= from && r.batch < to).length;
      const found = search(to, next, counts, [...rounds, to], late + stored - readings.length);
      if (found) return found;
    }
    dead.add(key);
    return null;
  };

  const found = search(
    0,
    rules.map(() => emptyState()),
    rules.map(() => 0),
    [],
    0,
  );
  if (found) return found;
  const alertsUnder = (rounds: Array<[number, number]>) =>
    rules.map((rule) => {
      let state = emptyState();
      const steps: Step[] = [];
      for (const [from, to] of rounds) {
        const result = evaluate(rule, state, roundReadings(from, to));
        state = result.state;
        steps.push(...result.transitions);
      }
      return alertsOf(steps);
    });
  return {
    perBatch: alertsUnder(batches.map((_, i) => [i, i + 1])),
    oneRound: alertsUnder([[0, m]]),
    agreedUntil,
  };
}

export function isMatch(result: ScheduleMatch | ScheduleMismatch): result is ScheduleMatch {
  return 'rounds' in result;
}
