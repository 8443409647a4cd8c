import { LOCK_CLASS, lockForTransaction } from '@app/database';
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
import { eventPayload } from './alerts.service';
import { toRuleResponse } from '@app/rules';

/** Readings evaluated per transaction; a device with more new readings loops. */
export const EVALUATION_CHUNK = 5000;

export interface EvaluationSummary {
  readings: number;
  opened: number;
  resolved: number;
}

/**
 * Evaluates a device's new readings against every rule that covers it, once, in ts order.
 *
 * One transaction per chunk, guarded by `pg_advisory_xact_lock` on the device taken
 * through that transaction's EntityManager: read the cursor (`devices.evaluated_until`)
 * and each rule's window state (≤ window_n points), run the pure evaluator, write alerts,
 * outbox events and the new state, advance the cursor, commit. Any number of evaluators
 * may run for the same device; the lock makes them take turns, and the cursor makes the
 * second one find nothing left to do. The partial unique index on active alerts backs it.
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

  async evaluateDevice(deviceId: string): Promise<EvaluationSummary> {
    const total: EvaluationSummary = { readings: 0, opened: 0, resolved: 0 };
    for (;;) {
      const end = this.duration.startTimer();
      const chunk = await this.dataSource.transaction((em) => this.evaluateChunk(em, deviceId));
      end();
      total.readings += chunk.readings;
      total.opened += chunk.opened;
      total.resolved += chunk.resolved;
      if (chunk.readings < EVALUATION_CHUNK) return total;
    }
  }

  private async evaluateChunk(em: EntityManager, deviceId: string): Promise<EvaluationSummary> {
    if (this.useLock) await lockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, deviceId);
    const [device] = await em.query(
      `SELECT project_id, evaluated_until FROM devices WHERE id = $1`,
      [deviceId],
    );
    if (!device) return { readings: 0, opened: 0, resolved: 0 };
    const rows: Array<{ ts: Date; data: Record<string, unknown> }> = await em.query(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 AND ts > COALESCE($2::timestamptz, '-infinity')
        ORDER BY ts LIMIT $3`,
      [deviceId, device.evaluated_until, EVALUATION_CHUNK],
    );
    if (rows.length === 0) return { readings: 0, opened: 0, resolved: 0 };
    const readings: Reading[] = rows.map((r) => ({ ts: r.ts.getTime(), data: r.data }));

    const rules = await this.rules.forDevice(em, deviceId);
    const states = await this.loadStates(em, deviceId, rules);
    const active = await this.alerts.activeForDevice(em, deviceId);
    let opened = 0;
    let resolved = 0;

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
          await this.alerts.addEvent(
            em,
            alert.projectId,
            alert.id,
            'alert.created',
            await eventPayload(em, alert),
          );
          current = alert.id;
          opened++;
        } else if (current) {
          const alert = await this.alerts.transition(
            em,
            current,
            ['open', 'acknowledged'],
            'resolved',
            new Date(t.at),
            {
              resolution: 'condition_cleared',
            },
          );
          if (alert) {
            await this.alerts.addEvent(
              em,
              alert.projectId,
              alert.id,
              'alert.resolved',
              await eventPayload(em, alert),
            );
            resolved++;
          }
          current = undefined;
        }
      }
      await this.saveState(em, rule.id, deviceId, result.state);
    }
    await em.query(`UPDATE devices SET evaluated_until = $2 WHERE id = $1`, [
      deviceId,
      rows[rows.length - 1].ts,
    ]);
    this.readingsEvaluated.inc(readings.length);
    if (opened) this.transitions.inc({ kind: 'opened' }, opened);
    if (resolved) this.transitions.inc({ kind: 'resolved' }, resolved);
    return { readings: readings.length, opened, resolved };
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

  private async saveState(
    em: EntityManager,
    ruleId: string,
    deviceId: string,
    state: EvaluationState,
  ): Promise<void> {
    await em.query(
      `INSERT INTO rule_device_state (rule_id, device_id, "window", last_triggered_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (rule_id, device_id) DO UPDATE SET "window" = EXCLUDED."window", last_triggered_at = EXCLUDED.last_triggered_at`,
      [
        ruleId,
        deviceId,
        JSON.stringify(state.window),
        state.lastTriggeredAt === null ? null : new Date(state.lastTriggeredAt).toISOString(),
      ],
    );
  }
}
