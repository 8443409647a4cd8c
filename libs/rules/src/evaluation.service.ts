import {
  DeviceAlertLock,
  DeviceAlertsRepository,
  EVENT_FAN_OUT,
  EventFanOut,
  OutboxRelay,
} from '@app/alerts';
import { MetricsService } from '@app/observability';
import {
  BatchFollower,
  BatchFollowUp,
  EvaluationReading,
  TelemetryRepository,
} from '@app/telemetry';
import { DeviceProgressRepository, EvaluationCursor } from '@app/tenancy';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Histogram } from 'prom-client';
import { DataSource, EntityManager } from 'typeorm';
import { DeviceRulesRepository } from './device-rules.repository';
import { isThresholdRule, RuleEntity } from './entities/rule.entity';
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

/** The metrics the device's threshold rules read (offline rules read none). */
const metricsOf = (rules: RuleEntity[]): string[] => [
  ...new Set(rules.filter(isThresholdRule).map((r) => r.metric)),
];

/** What evaluating `readings` (in ts order) passes: the last one's ts; null for none. */
const passedBy = (readings: EvaluationReading[]): Date | null =>
  readings.length > 0 ? new Date(readings[readings.length - 1].ts) : null;

/** A device under its alert lock, with the rules that cover it and their saved states. */
interface DeviceContext {
  deviceId: string;
  device: EvaluationCursor;
  rules: RuleEntity[];
  states: Map<string, EvaluationState>;
}

/** An alert opened or resolved by a chunk: logged once its transaction committed. */
interface AlertChangeLine {
  message: 'alert opened' | 'alert resolved';
  alertId: string;
  fields: Record<string, unknown>;
}

/** Once an evaluation's transaction committed: its events' deliveries enqueued. */
type AfterCommit = () => Promise<void>;

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
export class EvaluationService implements BatchFollower {
  private readonly logger = new Logger(EvaluationService.name);
  private readonly transitions: Counter<'kind'>;
  private readonly duration: Histogram;
  private readonly readingsEvaluated: Counter;
  private readonly evaluations: Counter<'path'>;
  private readonly lag: Histogram;
  private maxLagSeconds = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly lock: DeviceAlertLock,
    private readonly devices: DeviceProgressRepository,
    private readonly rules: DeviceRulesRepository,
    private readonly telemetry: TelemetryRepository,
    private readonly alerts: DeviceAlertsRepository,
    private readonly outbox: OutboxRelay,
    metrics: MetricsService,
    @Optional() @Inject(EVENT_FAN_OUT) private readonly fanOut?: EventFanOut,
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
    this.evaluations = metrics.counter(
      'rules_evaluations_total',
      'evaluation transactions: "batch" in the transaction that stored the batch, "queue" from a rule-evaluation job',
      ['path'],
    );
    this.lag = metrics.histogram(
      'rules_evaluation_lag_seconds',
      'from the api accepting a batch to the commit of its evaluation',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    );
    const takeMaxLag = () => {
      const seconds = this.maxLagSeconds;
      this.maxLagSeconds = 0;
      return seconds;
    };
    metrics.gauge(
      'rules_evaluation_lag_max_seconds',
      'the longest evaluation lag since the previous scrape (0 when nothing was evaluated)',
      [],
      function () {
        this.set(takeMaxLag());
      },
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
  async evaluateDevice(deviceId: string, acceptedAt?: number): Promise<EvaluationSummary> {
    const total: EvaluationSummary = { ...NOTHING };
    for (;;) {
      const end = this.duration.startTimer();
      const lines: AlertChangeLine[] = [];
      let handOn: AfterCommit | undefined;
      const chunk = await this.dataSource.transaction(async (em) => {
        const summary = await this.evaluateChunk(em, deviceId, lines);
        handOn = await this.fanOutWritten(em, lines);
        return summary;
      });
      end();
      await this.committed(chunk, lines, handOn);
      if (chunk.busy) return { ...total, busy: true };
      this.evaluations.inc({ path: 'queue' });
      total.readings += chunk.readings;
      total.opened += chunk.opened;
      total.resolved += chunk.resolved;
      if (chunk.readings < EVALUATION_CHUNK) {
        if (acceptedAt !== undefined) this.observeLag(acceptedAt);
        return total;
      }
    }
  }

  /**
   * {@link BatchFollower}: evaluates a batch in the transaction that stores it, from the
   * readings its INSERT returns. Only when this transaction gets the device's alert lock
   * at once and every reading stored before is evaluated: then the batch's readings after
   * the cursor are all the device's new readings, in order, as a `rule-evaluation` job
   * would read them back. Otherwise null, and the batch gets that job.
   */
  async prepare(
    em: EntityManager,
    { id: deviceId, ...device }: { id: string } & EvaluationCursor,
    acceptedAt: number,
  ): Promise<BatchFollowUp | null> {
    // Under the row lock the cursor and the stored readings cannot change: decide first,
    // and take the device's lock only for a batch this transaction will evaluate (held
    // until commit, it would keep the queued evaluation of an older backlog out). One
    // statement does both.
    const locked = await this.lock.tryTakeUnless(
      em,
      deviceId,
      this.telemetry.readingsAfterCheck(deviceId, device.evaluatedUntil),
    );
    if (locked !== true) return null;
    const context: DeviceContext = {
      deviceId,
      device,
      ...(await this.rules.covering(em, { id: deviceId, ...device })),
    };
    const lines: AlertChangeLine[] = [];
    let summary: EvaluationSummary = NOTHING;
    let handOn: AfterCommit | undefined;
    return {
      metrics: metricsOf(context.rules),
      apply: async (tx, readings) => {
        const end = this.duration.startTimer();
        summary = await this.evaluateReadings(tx, context, readings, lines);
        handOn = await this.fanOutWritten(tx, lines);
        end();
        // The caller records it with the batch's progress, in one statement.
        return passedBy(readings);
      },
      committed: async () => {
        this.evaluations.inc({ path: 'batch' });
        this.observeLag(acceptedAt);
        await this.committed(summary, lines, handOn);
      },
    };
  }

  private observeLag(acceptedAt: number): void {
    const seconds = Math.max(0, (Date.now() - acceptedAt) / 1000);
    this.lag.observe(seconds);
    if (seconds > this.maxLagSeconds) this.maxLagSeconds = seconds;
  }

  /**
   * In the evaluation's transaction: the events of the alerts it opened and resolved fanned
   * out to webhook deliveries there and then, when the worker wired a fan-out in
   * ({@link EventFanOut}); what to do once it committed. Undefined without one.
   */
  private async fanOutWritten(
    em: EntityManager,
    lines: AlertChangeLine[],
  ): Promise<AfterCommit | undefined> {
    if (!this.fanOut || lines.length === 0) return undefined;
    return this.fanOut.fanOutWritten(
      em,
      lines.map((l) => l.alertId),
    );
  }

  /**
   * After an evaluation's commit, on either path: its counts (never for work a rollback
   * undid, which runs again), one line per alert change (never one per reading), and its
   * events handed on: the deliveries the transaction created enqueued, or, where it had
   * no fan-out, the events relayed.
   */
  private async committed(
    summary: EvaluationSummary,
    lines: AlertChangeLine[],
    handOn: AfterCommit | undefined,
  ): Promise<void> {
    this.count(summary);
    for (const line of lines) this.logger.log(line.fields, line.message);
    if (handOn) await handOn();
    // Hand new events on now rather than at the next sweep; a failure here is covered by it.
    else if (summary.opened + summary.resolved > 0)
      await this.outbox.relay().catch(() => undefined);
  }

  private async evaluateChunk(
    em: EntityManager,
    deviceId: string,
    lines: AlertChangeLine[],
  ): Promise<EvaluationSummary> {
    const context = await this.lockedContext(em, deviceId);
    if (context === 'busy') return { ...NOTHING, busy: true };
    if (!context) return NOTHING;
    const { device, rules } = context;
    if (!rules.some(isThresholdRule)) {
      // Nothing to evaluate: move the cursor past what is stored (readings arriving older
      // than it are "late", for rules created later too) without reading the rows back;
      // new readings bring a device an offline rule holds offline back online.
      const active = await this.alerts.active(em, deviceId);
      let resolved = await this.resolveOrphans(em, context, active, lines);
      const newest = await this.telemetry.newestTs(em, deviceId);
      if (newest && (!device.evaluatedUntil || newest > device.evaluatedUntil)) {
        resolved += await this.resolveOffline(em, context, active, lines);
        await this.devices.advanceEvaluation(em, deviceId, newest);
      }
      return { ...NOTHING, resolved };
    }
    const readings = await this.telemetry.readingsAfter(
      em,
      deviceId,
      device.evaluatedUntil,
      metricsOf(rules),
      EVALUATION_CHUNK,
    );
    const summary = await this.evaluateReadings(em, context, readings, lines);
    const passed = passedBy(readings);
    if (passed) await this.devices.advanceEvaluation(em, deviceId, passed);
    return summary;
  }

  /**
   * Takes the device's alert lock (or `busy`), then its row (waiting for a batch being
   * stored to commit: readings it adds between the cursor and what this evaluation reads
   * would otherwise be passed over), and reads its cursor and covering rules.
   */
  private async lockedContext(
    em: EntityManager,
    deviceId: string,
  ): Promise<DeviceContext | 'busy' | null> {
    if (!(await this.lock.tryTake(em, deviceId))) return 'busy';
    const device = await this.devices.evaluationCursor(em, deviceId, { lock: true });
    if (!device) return null;
    return { deviceId, device, ...(await this.rules.covering(em, { id: deviceId, ...device })) };
  }

  /**
   * Runs the device's rules over `readings` (its next unevaluated readings, in ts order):
   * opens and resolves alerts with their outbox events and saves each rule's window state;
   * the caller moves the cursor to the last reading. Resolves orphaned alerts first.
   */
  private async evaluateReadings(
    em: EntityManager,
    context: DeviceContext,
    readings: EvaluationReading[],
    lines: AlertChangeLine[],
  ): Promise<EvaluationSummary> {
    const { deviceId, device, rules, states } = context;
    const active = await this.alerts.active(em, deviceId);
    const orphaned = await this.resolveOrphans(em, context, active, lines);
    if (readings.length === 0) return { ...NOTHING, resolved: orphaned };
    const ids = (ruleId: string, alertId: string) => ({
      projectId: device.projectId,
      ruleId,
      deviceId,
      alertId,
    });

    const thresholds = rules.filter(isThresholdRule);
    let opened = 0;
    let resolved = orphaned + (await this.resolveOffline(em, context, active, lines));

    const newStates: Array<{ ruleId: string; state: EvaluationState }> = [];
    for (const rule of thresholds) {
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
          clearThreshold: rule.clearThreshold,
          clearK: rule.clearK,
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
            alertId: alert.id,
            fields: { ...ids(rule.id, alert.id), triggeredAt: new Date(t.at).toISOString() },
          });
        } else if (current) {
          const alert = await this.alerts.resolve(em, current, new Date(t.at), 'condition_cleared');
          if (alert) {
            resolved++;
            lines.push({
              message: 'alert resolved',
              alertId: current,
              fields: { ...ids(rule.id, current), reason: 'condition_cleared' },
            });
          }
          current = undefined;
        }
      }
      newStates.push({ ruleId: rule.id, state: result.state });
    }
    if (newStates.length > 0) await this.rules.saveStates(em, deviceId, newStates);
    return { readings: readings.length, opened, resolved };
  }

  private count({ readings, opened, resolved }: EvaluationSummary): void {
    if (readings) this.readingsEvaluated.inc(readings);
    if (opened) this.transitions.inc({ kind: 'opened' }, opened);
    if (resolved) this.transitions.inc({ kind: 'resolved' }, resolved);
  }

  /**
   * Active alerts whose rule no longer covers the device (disabled, deleted, re-scoped, or
   * the device lost its tag or assignment): resolved here, under the device lock. This is
   * the backstop for a rule disabled while an evaluation of it was in flight, which
   * `AlertsService.closeRule` cannot see.
   */
  private resolveOrphans(
    em: EntityManager,
    context: DeviceContext,
    active: Map<string, string>,
    lines: AlertChangeLine[],
  ): Promise<number> {
    const covering = new Set(context.rules.map((r) => r.id));
    return this.resolveNow(em, context, active, lines, (ruleId) => !covering.has(ruleId), {
      reason: 'rule_no_longer_applies',
      event: 'alert.resolved',
    });
  }

  /**
   * The device was heard from (new readings): its alerts of offline rules resolve, with
   * `device.online`, at the time of hearing (arrival time, as the scan that opened them).
   */
  private resolveOffline(
    em: EntityManager,
    context: DeviceContext,
    active: Map<string, string>,
    lines: AlertChangeLine[],
  ): Promise<number> {
    const offline = new Set(context.rules.filter((r) => r.kind === 'offline').map((r) => r.id));
    return this.resolveNow(em, context, active, lines, (ruleId) => offline.has(ruleId), {
      reason: 'device_online',
      event: 'device.online',
    });
  }

  /**
   * Resolves now the device's active alerts whose rule `which` picks, each with its event
   * and log line, and drops them from `active`; returns how many it resolved.
   */
  private async resolveNow(
    em: EntityManager,
    { deviceId, device }: DeviceContext,
    active: Map<string, string>,
    lines: AlertChangeLine[],
    which: (ruleId: string) => boolean,
    { reason, event }: { reason: string; event: 'alert.resolved' | 'device.online' },
  ): Promise<number> {
    let resolved = 0;
    for (const [ruleId, alertId] of active) {
      if (!which(ruleId)) continue;
      if (await this.alerts.resolve(em, alertId, new Date(), reason, event)) {
        resolved++;
        lines.push({
          message: 'alert resolved',
          alertId,
          fields: { projectId: device.projectId, ruleId, deviceId, alertId, reason },
        });
      }
      active.delete(ruleId);
    }
    return resolved;
  }
}
