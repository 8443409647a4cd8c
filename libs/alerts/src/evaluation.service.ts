import { LOCK_CLASS, tryLockForTransaction } from '@app/database';
import { MetricsService } from '@app/observability';
import {
  emptyState,
  evaluate,
  EvaluationState,
  Reading,
  RuleEntity,
  RulesRepository,
  WindowPoint,
} from '@app/rules';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Histogram } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { AlertsRepository } from './alerts.repository';
import { toRuleResponse } from '@app/rules';

/** Readings evaluated per transaction; a device with more new readings loops. */
export const EVALUATION_CHUNK = 5000;

export interface EvaluationSummary {
  readings: number;
  opened: number;
  resolved: number;
  /** Another evaluator held the device; evaluate again shortly. */
  busy?: boolean;
}

/**
 * Evaluates a device's new readings against every rule that covers it, once, in ts order.
 *
 * One transaction per chunk, guarded by `pg_advisory_xact_lock` on the device taken
 * through that transaction's EntityManager: read the cursor (`devices.evaluated_until`)
 * and each rule's window state (≤ window_n points), run the pure evaluator, write alerts,
 * outbox events and the new state, advance the cursor, commit. Any number of evaluators
 * may run for the same device; the lock lets one in at a time (the others come back
 * shortly), and the cursor makes a later one find nothing left to do. The partial unique
 * index on active alerts backs it.
 */
@Injectable()
export class EvaluationService {
  private readonly transitions: Counter<'kind'>;
  private readonly duration: Histogram;
  private readonly readingsEvaluated: Counter;
  /** Tests switch this off to show what the lock prevents. Never off in production. */
  useLock = true;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rules: RulesRepository,
    private readonly alerts: AlertsRepository,
    metrics: MetricsService,
  ) {
    const registers = [metrics.registry];
    this.transitions = new Counter({
      name: 'alerts_transitions_total',
      help: 'alerts opened and resolved by evaluation',
      labelNames: ['kind'],
      registers,
    });
    this.readingsEvaluated = new Counter({
      name: 'rules_readings_evaluated_total',
      help: 'readings evaluated (each once)',
      registers,
    });
    this.duration = new Histogram({
      name: 'rules_evaluation_duration_seconds',
      help: 'one evaluation transaction',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
  }

  /**
   * Evaluates everything new, a chunk per transaction. When another evaluator holds the
   * device, returns `busy` at once instead of holding a worker slot and a connection
   * while it waits; the caller retries shortly (the holder may already have read past the
   * point where this job's readings were committed, so dropping the job would be wrong).
   */
  async evaluateDevice(deviceId: string): Promise<EvaluationSummary> {
    const total: EvaluationSummary = { readings: 0, opened: 0, resolved: 0 };
    for (;;) {
      const end = this.duration.startTimer();
      const chunk = await this.dataSource.transaction((em) => this.evaluateChunk(em, deviceId));
      end();
      if (chunk.busy) return { ...total, busy: true };
      total.readings += chunk.readings;
      total.opened += chunk.opened;
      total.resolved += chunk.resolved;
      if (chunk.readings < EVALUATION_CHUNK) return total;
    }
  }

  private async evaluateChunk(em: EntityManager, deviceId: string): Promise<EvaluationSummary> {
    if (
      this.useLock &&
      !(await tryLockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, deviceId))
    ) {
      return { readings: 0, opened: 0, resolved: 0, busy: true };
    }
    const [device] = await em.query(
      `SELECT project_id, evaluated_until FROM devices WHERE id = $1`,
      [deviceId],
    );
    if (!device) return { readings: 0, opened: 0, resolved: 0 };
    const rules = await this.rules.forDevice(em, deviceId);
    const active = await this.alerts.activeForDevice(em, deviceId);
    const orphaned = await this.resolveOrphans(em, rules, active);
    if (rules.length === 0) {
      // Nothing to evaluate: move the cursor past what is stored (readings arriving older
      // than it are "late", for rules created later too) without reading the rows back.
      await em.query(
        `UPDATE devices
            SET evaluated_until = GREATEST(evaluated_until, (SELECT max(ts) FROM telemetry WHERE device_id = $1))
          WHERE id = $1`,
        [deviceId],
      );
      return { readings: 0, opened: 0, resolved: orphaned };
    }
    // Only the metrics the rules look at, as the number's text or NULL when not a JSON
    // number: the database does the jsonb work, and no whole `data` object crosses the
    // wire per row. Text, not ::float8: jsonb keeps numbers exactly, and a cast of one no
    // double can hold (1e-400, written by an older api) raises 22003 on every later
    // chunk, stalling the device for good. Number() reads it as the api's JSON.parse did.
    const metrics = [...new Set(rules.map((r) => r.metric))];
    const columns = metrics.map(
      (_, i) =>
        `CASE WHEN jsonb_typeof(data -> $${i + 4}) = 'number' THEN data ->> $${i + 4} END AS m${i}`,
    );
    // ts as epoch milliseconds: parsing 5,000 timestamptz strings into Dates was a
    // measurable share of the worker's CPU in a bench:rules profile.
    const rows: Array<Record<string, unknown> & { ts_ms: number }> = await em.query(
      `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ts_ms, ${columns.join(', ')} FROM telemetry
        WHERE device_id = $1 AND ts > COALESCE($2::timestamptz, '-infinity')
        ORDER BY ts LIMIT $3`,
      [deviceId, device.evaluated_until, EVALUATION_CHUNK, ...metrics],
    );
    if (rows.length === 0) return { readings: 0, opened: 0, resolved: orphaned };
    const readings: Reading[] = rows.map((r) => ({
      ts: r.ts_ms,
      data: Object.fromEntries(metrics.map((m, i) => [m, toNumber(r[`m${i}`])])),
    }));

    const states = await this.loadStates(em, deviceId, rules);
    let opened = 0;
    let resolved = orphaned;

    const newStates: Array<{ ruleId: string; state: EvaluationState }> = [];
    for (const rule of rules) {
      const prior = states.get(rule.id) ?? emptyState();
      const activeId = active.get(rule.id);
      const result = evaluate(
        {
          metric: rule.metric,
          operator: rule.operator,
          threshold: rule.threshold,
          windowN: rule.windowN,
          requiredK: rule.requiredK,
          cooldownSeconds: rule.cooldownSeconds,
        },
        { ...prior, open: activeId !== undefined },
        readings,
      );
      let current = activeId;
      for (const t of result.transitions) {
        if (t.kind === 'open') {
          const alert = await this.alerts.open(em, {
            projectId: device.project_id,
            ruleId: rule.id,
            deviceId,
            triggeredAt: new Date(t.at),
            details: {
              rule: toRuleResponse(rule),
              window: t.window.map((w) => ({
                ts: new Date(w.ts).toISOString(),
                value: w.value,
                breached: w.breached,
              })),
            },
          });
          await this.alerts.record(em, alert, 'alert.created');
          current = alert.id;
          opened++;
        } else if (current) {
          const alert = await this.alerts.transitionAndRecord(
            em,
            current,
            ['open', 'acknowledged'],
            'resolved',
            new Date(t.at),
            {
              resolution: 'condition_cleared',
            },
          );
          if (alert) resolved++;
          current = undefined;
        }
      }
      newStates.push({ ruleId: rule.id, state: result.state });
    }
    await this.saveStates(em, deviceId, newStates);
    await em.query(`UPDATE devices SET evaluated_until = $2 WHERE id = $1`, [
      deviceId,
      new Date(rows[rows.length - 1].ts_ms).toISOString(),
    ]);
    this.readingsEvaluated.inc(readings.length);
    if (opened) this.transitions.inc({ kind: 'opened' }, opened);
    if (resolved) this.transitions.inc({ kind: 'resolved' }, resolved);
    return { readings: readings.length, opened, resolved };
  }

  /**
   * Active alerts whose rule no longer covers the device (disabled, deleted, re-scoped, or
   * the device lost its tag or assignment): resolved here, under the device lock. This is
   * the backstop for a rule disabled while an evaluation of it was in flight, which
   * `AlertsService.closeRule` cannot see.
   */
  private async resolveOrphans(
    em: EntityManager,
    rules: RuleEntity[],
    active: Map<string, string>,
  ): Promise<number> {
    const covering = new Set(rules.map((r) => r.id));
    let resolved = 0;
    for (const [ruleId, alertId] of active) {
      if (covering.has(ruleId)) continue;
      const alert = await this.alerts.transitionAndRecord(
        em,
        alertId,
        ['open', 'acknowledged'],
        'resolved',
        new Date(),
        {
          resolution: 'rule_no_longer_applies',
        },
      );
      if (alert) resolved++;
      active.delete(ruleId);
    }
    return resolved;
  }

  private async loadStates(
    em: EntityManager,
    deviceId: string,
    rules: RuleEntity[],
  ): Promise<Map<string, EvaluationState>> {
    if (rules.length === 0) return new Map();
    const rows: Array<{ rule_id: string; window: WindowPoint[]; last_triggered_at: Date | null }> =
      await em.query(
        `SELECT rule_id, "window", last_triggered_at FROM rule_device_state WHERE device_id = $1 AND rule_id = ANY ($2::uuid[])`,
        [deviceId, rules.map((r) => r.id)],
      );
    return new Map(
      rows.map((r) => [
        r.rule_id,
        { window: r.window, lastTriggeredAt: r.last_triggered_at?.getTime() ?? null, open: false },
      ]),
    );
  }

  /** Every rule's new state for the device in one statement. */
  private async saveStates(
    em: EntityManager,
    deviceId: string,
    states: Array<{ ruleId: string; state: EvaluationState }>,
  ): Promise<void> {
    await em.query(
      `INSERT INTO rule_device_state (rule_id, device_id, "window", last_triggered_at)
       SELECT s.rule_id, $1, s.win, s.last FROM unnest($2::uuid[], $3::jsonb[], $4::timestamptz[]) AS s(rule_id, win, last)
       ON CONFLICT (rule_id, device_id) DO UPDATE
         SET "window" = EXCLUDED."window", last_triggered_at = EXCLUDED.last_triggered_at`,
      [
        deviceId,
        states.map((s) => s.ruleId),
        states.map((s) => JSON.stringify(s.state.window)),
        states.map((s) =>
          s.state.lastTriggeredAt === null ? null : new Date(s.state.lastTriggeredAt).toISOString(),
        ),
      ],
    );
  }
}

/** A jsonb number's text as a finite double, else null (not a number the rules can use). */
function toNumber(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}
