import { AlertEventRecord, AlertEventsRepository, TEST_EVENT_TYPE } from '@app/alerts';
import { ProjectId } from '@app/common';
import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Counter, Histogram } from 'prom-client';
import { circuitChange, isEndpointFailure } from './circuit-breaker';
import { CircuitBreakerService, ReportedState } from './circuit-breaker.service';
import { ClaimedDelivery, DeliveryLedgerRepository } from './delivery-ledger.repository';
import { attemptLeaseMs, DeliverySlots } from './delivery-slots';
import {
  AttemptOutcome,
  classifyStatus,
  honoursRetryAfter,
  parseRetryAfter,
  retryDelayMs,
} from './retry-schedule';
import { KEY_IDS_HEADER, keyId, signatureHeader } from './signature';
import { SendResult, WebhookHttpClient } from './webhook-http';
import { WebhookSecretCodec } from './webhook-secrets';

/** While a half-open probe is out, other deliveries look again this often. */
const HALF_OPEN_POLL_MS = 1000;
/** Spread of the wake-up after an open period, so waiting deliveries don't stampede. */
const WAKE_JITTER_MS = 500;
export const USER_AGENT = 'telemetry-platform-webhooks/1';

/**
 * A database time (ms) as this process's clock shows it, given the database's `now()`:
 * a job delayed on a skewed worker clock would otherwise spin or stall.
 */
const toLocalTime = (dbTime: number, dbNow: Date): number =>
  Date.now() + Math.max(0, dbTime - dbNow.getTime());

export type DeliveryStep =
  | { done: true }
  | { done: false; retryAt: number }
  /** The project has every delivery slot in use: look again later (see DeliverySlots). */
  | { done: false; busy: true };

/** A delivery that is due now: its webhook's URL and state, and the event to send. */
interface DueNow {
  projectId: string;
  webhookId: string;
  url: string;
  enabled: boolean;
  event: AlertEventRecord;
}

/**
 * One step of a delivery: a delivery slot of its project, the circuit's word, a claim on
 * the row, the event signed and sent, the attempt recorded, and when (if ever) the next
 * step is due. The delivery row is the source of truth (see DeliveryLedgerRepository);
 * the job only carries its id.
 */
@Injectable()
export class DeliveryService implements OnApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly http: WebhookHttpClient;
  private readonly schedule: number[];
  private readonly leaseMs: number;
  private readonly attemptsTotal: Counter<'outcome'>;
  private readonly finished: Counter<'status'>;
  private readonly attemptDuration: Histogram;
  private readonly eventLatency: Histogram;

  constructor(
    private readonly ledger: DeliveryLedgerRepository,
    private readonly events: AlertEventsRepository,
    private readonly breaker: CircuitBreakerService,
    private readonly slots: DeliverySlots,
    private readonly secrets: WebhookSecretCodec,
    config: ConfigService<AppConfig, true>,
    metrics: MetricsService,
  ) {
    const webhooks = config.get('webhooks', { infer: true });
    this.http = new WebhookHttpClient({
      timeoutMs: webhooks.timeoutMs,
      allowPrivateNetworks: webhooks.allowPrivateNetworks,
    });
    this.schedule = webhooks.retryScheduleSeconds;
    this.leaseMs = attemptLeaseMs(webhooks.timeoutMs);
    this.attemptsTotal = metrics.counter(
      'webhook_attempts_total',
      'Webhook delivery attempts by outcome (succeeded, retry, gone)',
      ['outcome'],
    );
    this.finished = metrics.counter(
      'webhook_deliveries_finished_total',
      'Deliveries that reached a final status',
      ['status'],
    );
    this.attemptDuration = metrics.histogram(
      'webhook_attempt_duration_seconds',
      'Duration of one delivery attempt, connect to last byte read',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.eventLatency = metrics.histogram(
      'webhook_event_to_delivery_seconds',
      'From the alert event being written to its webhook answered 2xx',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600],
    );
  }

  /** After the workers drained (beforeApplicationShutdown): in-flight attempts finish first. */
  onApplicationShutdown(): void {
    this.http.close();
  }

  /**
   * One step of a delivery of `projectId`'s, inside one of the project's delivery slots:
   * a project whose every slot is taken gets `busy` before anything else is read.
   * `eventId`, when the job carries it, is read beside the delivery's row.
   */
  async deliver(projectId: ProjectId, deliveryId: string, eventId?: string): Promise<DeliveryStep> {
    const slot = await this.slots.take(projectId);
    if (!slot) return { done: false, busy: true };
    try {
      return await this.step(deliveryId, eventId);
    } finally {
      // A lost release only keeps the slot until its lease ends.
      await this.slots.release(projectId, slot).catch(() => undefined);
    }
  }

  private async step(deliveryId: string, eventId?: string): Promise<DeliveryStep> {
    // Read first, write only to send: deliveries waiting on a circuit poll without writes.
    const due = await this.due(deliveryId, eventId);
    if ('done' in due) return due;

    if (!due.enabled) {
      // A webhook disabled before this attempt came due; re-enabled in time, it would go on.
      await this.finish(deliveryId, 'the webhook is disabled', due);
      return { done: true };
    }

    const gate = await this.breaker.decide({ projectId: due.projectId, url: due.url });
    if (gate.action === 'wait') {
      if (gate.state.state === 'half_open')
        return { done: false, retryAt: Math.min(gate.retryAt, Date.now() + HALF_OPEN_POLL_MS) };
      const retryAt = gate.retryAt + Math.floor(Math.random() * WAKE_JITTER_MS);
      // Open: say so in the row (once per open period), so the sweeper leaves it alone.
      await this.ledger.postpone(deliveryId, new Date(retryAt));
      return { done: false, retryAt };
    }

    // A lease with a token: only its holder may record the outcome, so a sender that lost
    // its lease (stalled past it, while another worker took over) can't overwrite a newer
    // result.
    const claim = await this.ledger.claim(deliveryId, this.leaseMs);
    if (!claim) return { done: false, retryAt: Date.now() + HALF_OPEN_POLL_MS }; // taken meanwhile
    return this.attempt(claim, due.event);
  }

  /**
   * Whether the delivery is due now (with its webhook's URL and the event), or done, or
   * when to look again. A delivery whose event no longer exists is failed here. The event
   * is read at the same time as the row when its id is known (`eventId`), after it if not.
   */
  private async due(deliveryId: string, eventId?: string): Promise<DeliveryStep | DueNow> {
    const [row, known] = await Promise.all([
      this.ledger.due(deliveryId),
      eventId ? this.events.find(eventId) : undefined,
    ]);
    if (!row || row.status !== 'pending') return { done: true };
    const event =
      known !== undefined && row.eventId === eventId ? known : await this.events.find(row.eventId);
    if (!event) {
      await this.finish(deliveryId, 'the alert event no longer exists', row);
      return { done: true };
    }
    const now = row.now.getTime();
    const waitUntil = Math.max(
      row.nextAttemptAt?.getTime() ?? 0,
      row.leaseUntil && row.leaseUntil > row.now ? row.leaseUntil.getTime() : 0,
    );
    if (waitUntil > now + 50) return { done: false, retryAt: toLocalTime(waitUntil, row.now) };
    return {
      projectId: row.projectId,
      webhookId: row.webhookId,
      url: row.url,
      enabled: row.enabled,
      event,
    };
  }

  /** Signs and sends the event under the claim, reports to the circuit and records it. */
  private async attempt(d: ClaimedDelivery, event: AlertEventRecord): Promise<DeliveryStep> {
    const startedAt = new Date();
    let secrets: string[];
    try {
      secrets = this.signingSecrets(d, startedAt);
    } catch (err) {
      // Our configuration, not the endpoint: an attempt that says so, retried on the
      // schedule (an operator restoring the key lets it through), no circuit report.
      const error = `the webhook's secret cannot be decrypted: ${(err as Error).message}`;
      this.logger.error({ webhookId: d.webhookId, err: (err as Error).message }, error);
      return this.record(
        d,
        event,
        startedAt,
        { statusCode: null, durationMs: 0, error, responseExcerpt: null, retryAfter: undefined },
        'retry',
      );
    }
    const body = JSON.stringify({
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      data: event.payload,
    });
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const result = await this.http.post(
      d.url,
      {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'webhook-id': event.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(secrets, event.id, timestamp, body),
        [KEY_IDS_HEADER]: secrets.map(keyId).join(' '),
      },
      body,
    );
    const outcome = classifyStatus(result.statusCode);
    // A breaker hiccup must not lose the attempt's record: report it, but don't depend on it.
    await this.breaker
      .report({ projectId: d.projectId, url: d.url }, !isEndpointFailure(result.statusCode))
      .then((state) => this.logCircuitChange(d, state))
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'circuit report failed'));
    this.attemptsTotal.inc({ outcome });
    this.attemptDuration.observe(result.durationMs / 1000);

    return this.record(d, event, startedAt, result, outcome);
  }

  /** The secrets that sign now: the current one and, until it expires, the previous one. */
  private signingSecrets(d: ClaimedDelivery, at: Date): string[] {
    const secrets = [this.secrets.open(d.webhookId, d.secret)];
    if (d.previousSecret && d.previousSecretExpiresAt && d.previousSecretExpiresAt > at)
      secrets.push(this.secrets.open(d.webhookId, d.previousSecret));
    return secrets;
  }

  /**
   * One line per change of a circuit's state, by the report that made it (Redis tells
   * exactly one report of each change), never one per failed attempt.
   */
  private logCircuitChange(d: ClaimedDelivery, state: ReportedState): void {
    const change = circuitChange(state.previous, state.state);
    if (!change) return;
    const ids = { projectId: d.projectId, url: d.url, webhookId: d.webhookId, deliveryId: d.id };
    if (change === 'closed') this.logger.log(ids, 'circuit closed: the endpoint answered again');
    else
      this.logger.warn(
        {
          ...ids,
          consecutiveFailures: state.consecutiveFailures,
          recoveryMs: this.breaker.config.recoveryMs,
        },
        change === 'opened'
          ? 'circuit opened: deliveries to the endpoint wait'
          : 'circuit opened again: the probe failed',
      );
  }

  /** Fails the delivery for good without an attempt (its webhook disabled, its event gone). */
  private async finish(
    deliveryId: string,
    error: string,
    ids: { projectId: string; webhookId: string },
  ): Promise<void> {
    if (!(await this.ledger.finish(deliveryId, error))) return;
    this.finished.inc({ status: 'failed' });
    this.logger.warn(
      { projectId: ids.projectId, deliveryId, webhookId: ids.webhookId, lastError: error },
      'delivery failed for good',
    );
  }

  /** The attempt and its consequence (see DeliveryLedgerRepository.recordAttempt). */
  private async record(
    d: ClaimedDelivery,
    event: AlertEventRecord,
    startedAt: Date,
    result: SendResult,
    outcome: AttemptOutcome,
  ): Promise<DeliveryStep> {
    let error = result.error;
    // The delay before each possible next attempt, jittered; the ledger picks the one that applies.
    let delaysMs: number[] = [];
    if (outcome === 'gone')
      error = '410 Gone: the endpoint asked for no more deliveries; webhook disabled';
    else if (outcome === 'retry') {
      const asked = honoursRetryAfter(result.statusCode)
        ? parseRetryAfter(result.retryAfter, startedAt.getTime())
        : null;
      delaysMs = this.schedule.map(
        (_, i) => asked ?? retryDelayMs(this.schedule, i + 1, Math.random())!,
      );
      error ??= `endpoint answered ${result.statusCode}`;
    }

    const row = await this.ledger.recordAttempt(d, {
      outcome,
      startedAt,
      durationMs: result.durationMs,
      statusCode: result.statusCode,
      error: result.error,
      lastError: outcome === 'succeeded' ? null : error,
      responseExcerpt: result.responseExcerpt,
      delaysMs,
    });
    // Deleted with its webhook meanwhile, or our lease was taken over: not ours to record.
    if (!row) return { done: true };

    if (row.status !== 'pending') this.finished.inc({ status: row.status });
    if (row.status === 'succeeded' && event.type !== TEST_EVENT_TYPE)
      this.eventLatency.observe((Date.now() - event.createdAt.getTime()) / 1000);
    if (row.status === 'failed')
      this.logger.warn(
        {
          projectId: d.projectId,
          deliveryId: d.id,
          webhookId: d.webhookId,
          eventId: event.id,
          eventType: event.type,
          attempts: row.attempts,
          lastError: error,
        },
        'delivery failed for good',
      );
    if (outcome === 'gone')
      this.logger.warn(
        { webhookId: d.webhookId, url: d.url },
        'endpoint answered 410: webhook disabled',
      );
    if (row.status !== 'pending' || !row.nextAttemptAt) return { done: true };
    return { done: false, retryAt: toLocalTime(row.nextAttemptAt.getTime(), row.now) };
  }
}
