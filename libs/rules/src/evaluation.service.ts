import { DeviceAlertLock, DeviceAlertsRepository } from '@app/alerts';
import { MetricsService } from '@app/observability';
import { TelemetryRepository } from '@app/telemetry';
import { DeviceProgressRepository } from '@app/tenancy';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Histogram } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { DeviceRulesRepository } from './device-rules.repository';
import { RuleEntity } from './entities/rule.entity';
import { emptyState, evaluate, EvaluationState } from './evaluator';
import { toRuleResponse } from './rules.mappers';

/** Readings evaluated per transaction; a device with more new readings loops. */
export const EVALUATION_CHUNK = 5000;

export interface EvaluationSummary {
  readings: number;
  opened: number;
  resolved: number;
  /** Another evaluator held the device; evaluate again shortly. */
  busy?: boolean;
}

const NOTHING: EvaluationSummary = { readings: 0, opened: 0, resolved: 0 };

/** An alert opened or resolved by a chunk: logged once its transaction committed. */
interface AlertChangeLine {
  message: 'alert opened' | 'alert resolved';
  fields: Record<string, unknown>;
}

/**
 * Evaluates a device's new readings against every rule that covers it, once, in ts order.
 *
 * One transaction per chunk, under the device's alert lock ({@link DeviceAlertLock}, an
 * advisory lock taken through that transaction's EntityManager): read the cursor
 * (`devices.evaluated_until`, from tenancy) and each rule's window state (≤ window_n
 * points), read the new readings (from telemetry), run the pure evaluator, open and
 * resolve alerts with their outbox events (alerts), save the new state, advance the
 * cursor, commit. Any number of evaluators may run for the same device; the lock lets one
 * in at a time (the others come back shortly), and the cursor makes a later one find
 * nothing left to do. The partial unique index on active alerts backs it.
 */
@Injectable()
export class EvaluationService {
  private readonly logger = new Logger(EvaluationService.name);
  private readonly transitions: Counter<'kind'>;
  private readonly duration: Histogram;
  private readonly readingsEvaluated: Counter;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly lock: DeviceAlertLock,
    private readonly devices: DeviceProgressRepository,
    private readonly rules: DeviceRulesRepository,
    private readonly telemetry: TelemetryRepository,
    private readonly alerts: DeviceAlertsRepository,
    metrics: MetricsService,
  ) {
    this.transitions = metrics.counter(
      'alerts_transitions_total',
      'alerts opened and resolved by evaluation',
      ['kind'],
    );
    this.readingsEvaluated = metrics.counter(
      'rules_readings_evaluated_total',
      'readings evaluated (each once)',
    );
    this.duration = metrics.histogram(
      'rules_evaluation_duration_seconds',
      'one evaluation transaction',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
  }

  /**
   * Evaluates everything new, a chunk per transaction. When another evaluator holds the
   * device, returns `busy` at once instead of holding a worker slot and a connection
   * while it waits; the caller retries shortly (the holder may already have read past the
   * point where this job's readings were committed, so dropping the job would be wrong).
   */
  async evaluateDevice(deviceId: string): Promise<EvaluationSummary> {
    const total: EvaluationSummary = { ...NOTHING };
    for (;;) {
      const end = this.duration.startTimer();
      const lines: AlertChangeLine[] = [];
      const chunk = await this.dataSource.transaction((em) =>
        this.evaluateChunk(em, deviceId, lines),
      );
      end();
      // Committed: one line per alert opened or resolved (never one per reading).
      for (const line of lines) this.logger.log(line.fields, line.message);
      if (chunk.busy) return { ...total, busy: true };
      total.readings += chunk.readings;
      total.opened += chunk.opened;
      total.resolved += chunk.resolved;
      if (chunk.readings < EVALUATION_CHUNK) return total;
    }
  }

  private async evaluateChunk(
    em: EntityManager,
    deviceId: string,
    lines: AlertChangeLine[],
  ): Promise<EvaluationSummary> {
    if (!(await this.lock.tryTake(em, deviceId))) return { ...NOTHING, busy: true };
    const device = await this.devices.evaluationCursor(em, deviceId);
    if (!device) return NOTHING;
    const rules = await this.rules.covering(em, { id: deviceId, ...device });
    const active = await this.alerts.active(em, deviceId);
    const ids = (ruleId: string, alertId: string) => ({
      projectId: device.projectId,
      ruleId,
      deviceId,
      alertId,
    });
    const orphaned = await this.resolveOrphans(em, rules, active, (ruleId, alertId) =>
      lines.push({
        message: 'alert resolved',
        fields: { ...ids(ruleId, alertId), reason: 'rule_no_longer_applies' },
      }),
    );
    if (rules.length === 0) {
      // Nothing to evaluate: move the cursor past what is stored (readings arriving older
      // than it are "late", for rules created later too) without reading the rows back.
      const newest = await this.telemetry.newestTs(em, deviceId);
      if (newest) await this.devices.advanceEvaluation(em, deviceId, newest);
      return { ...NOTHING, resolved: orphaned };
    }
    const metrics = [...new Set(rules.map((r) => r.metric))];
    const readings = await this.telemetry.readingsAfter(
      em,
      deviceId,
      device.evaluatedUntil,
      metrics,
      EVALUATION_CHUNK,
    );
    if (readings.length === 0) return { ...NOTHING, resolved: orphaned };

    const states = await this.rules.states(
      em,
      deviceId,
      rules.map((r) => r.id),
    );
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
            projectId: device.projectId,
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
          current = alert.id;
          opened++;
          lines.push({
            message: 'alert opened',
            fields: { ...ids(rule.id, alert.id), triggeredAt: new Date(t.at).toISOString() },
          });
        } else if (current) {
          const alert = await this.alerts.resolve(em, current, new Date(t.at), 'condition_cleared');
          if (alert) {
            resolved++;
            lines.push({
              message: 'alert resolved',
              fields: { ...ids(rule.id, current), reason: 'condition_cleared' },
            });
          }
          current = undefined;
        }
      }
      newStates.push({ ruleId: rule.id, state: result.state });
    }
    await this.rules.saveStates(em, deviceId, newStates);
    await this.devices.advanceEvaluation(em, deviceId, new Date(readings[readings.length - 1].ts));
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
    onResolved: (ruleId: string, alertId: string) => void,
  ): Promise<number> {
    const covering = new Set(rules.map((r) => r.id));
    let resolved = 0;
    for (const [ruleId, alertId] of active) {
      if (covering.has(ruleId)) continue;
      if (await this.alerts.resolve(em, alertId, new Date(), 'rule_no_longer_applies')) {
        resolved++;
        onResolved(ruleId, alertId);
      }
      active.delete(ruleId);
    }
    return resolved;
  }
}
