import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { isEndpointFailure } from './circuit-breaker';
import { CircuitBreakerService } from './circuit-breaker.service';
import { DeliveryQueue } from './delivery-queue';
import { DeliverySlots } from './delivery-slots';
import { WebhookSecretCodec } from './webhook-secrets';
import { classifyStatus, honoursRetryAfter, parseRetryAfter, retryDelayMs } from './retry-schedule';
import { signatureHeader } from './signature';
import { SendResult, WebhookHttpClient } from './webhook-http';

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

interface ClaimedDelivery {
  id: string;
  lease_token: string;
  project_id: string;
  webhook_id: string;
  event_id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  type: string;
  payload: Record<string, unknown>;
  event_created_at: Date;
}

/**
 * One step of a delivery: claim it, ask the circuit, send it signed, record the attempt,
 * and say when (if ever) the next step is due. The delivery row is the source of truth;
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
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly breaker: CircuitBreakerService,
    private readonly deliveryQueue: DeliveryQueue,
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
    // Longer than any attempt can take, so a live sender never loses its claim.
    this.leaseMs = webhooks.timeoutMs + 30000;
    const registers = [metrics.registry];
    this.attemptsTotal = new Counter({
      name: 'webhook_attempts_total',
      help: 'Webhook delivery attempts by outcome (succeeded, retry, gone)',
      labelNames: ['outcome'],
      registers,
    });
    this.finished = new Counter({
      name: 'webhook_deliveries_finished_total',
      help: 'Deliveries that reached a final status',
      labelNames: ['status'],
      registers,
    });
    this.attemptDuration = new Histogram({
      name: 'webhook_attempt_duration_seconds',
      help: 'Duration of one delivery attempt, connect to last byte read',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.eventLatency = new Histogram({
      name: 'webhook_event_to_delivery_seconds',
      help: 'From the alert event being written to its webhook answered 2xx',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600],
      registers,
    });
  }

  /** After the workers drained (beforeApplicationShutdown): in-flight attempts finish first. */
  onApplicationShutdown(): void {
    this.http.close();
  }

  /**
   * Fan-out of one alert event: one delivery per enabled webhook of its project that takes
   * its type and existed when it happened, and the event marked dispatched in the same
   * transaction, so an event is dispatched exactly when its deliveries exist (the outbox
   * relay hands undispatched events on again). Idempotent (unique (webhook_id, event_id)),
   * so a repeated alert-events job adds nothing; every pending delivery of the event is
   * (re-)enqueued after the commit, a no-op for one that already has a job. A lost enqueue
   * is the delivery sweeper's to repair.
   */
  async fanOut(eventId: string): Promise<number> {
    const rows = await this.dataSource.transaction(async (em) => {
      const created: Array<{ id: string; project_id: string }> = await em.query(
        `WITH event AS (SELECT id, project_id, type, created_at FROM alert_events WHERE id = $1 FOR UPDATE),
            created AS (
              INSERT INTO webhook_deliveries
                     (project_id, webhook_id, event_id, event_type, status, next_attempt_at)
              SELECT w.project_id, w.id, e.id, e.type, 'pending', now()
                FROM event e JOIN webhooks w ON w.project_id = e.project_id
               WHERE w.enabled AND e.type = ANY (w.event_types) AND w.created_at <= e.created_at
              ON CONFLICT (webhook_id, event_id) DO NOTHING
              RETURNING id, project_id)
       SELECT id, project_id FROM created
       UNION
       SELECT d.id, d.project_id FROM event e
         JOIN webhooks w ON w.project_id = e.project_id
         JOIN webhook_deliveries d ON d.webhook_id = w.id AND d.event_id = e.id
        WHERE d.status = 'pending'`,
        [eventId],
      );
      await em.query(
        `UPDATE alert_events SET dispatched_at = now() WHERE id = $1 AND dispatched_at IS NULL`,
        [eventId],
      );
      return created;
    });
    await this.deliveryQueue.enqueue(
      rows.map((r) => ({ projectId: r.project_id, deliveryId: r.id })),
    );
    return rows.length;
  }

  /**
   * One step of a delivery of `projectId`'s, inside one of the project's delivery slots:
   * a project whose every slot is taken gets `busy` before anything else is read.
   */
  async deliver(deliveryId: string, projectId: string): Promise<DeliveryStep> {
    const slot = await this.slots.take(projectId);
    if (!slot) return { done: false, busy: true };
    try {
      return await this.step(deliveryId);
    } finally {
      // A lost release only keeps the slot until its lease ends.
      await this.slots.release(projectId, slot).catch(() => undefined);
    }
  }

  private async step(deliveryId: string): Promise<DeliveryStep> {
    // Read first, write only to send: deliveries waiting on a circuit poll without writes.
    const due = await this.due(deliveryId);
    if ('done' in due) return due;

    if (!due.enabled) {
      // A webhook disabled before this attempt came due; re-enabled in time, it would go on.
      await this.finish(deliveryId, 'the webhook is disabled');
      return { done: true };
    }

    const circuit = { projectId: due.projectId, url: due.url };
    const gate = await this.breaker.decide(circuit);
    if (gate.action === 'wait') {
      if (gate.state.state === 'half_open')
        return { done: false, retryAt: Math.min(gate.retryAt, Date.now() + HALF_OPEN_POLL_MS) };
      const retryAt = gate.retryAt + Math.floor(Math.random() * WAKE_JITTER_MS);
      // Open: say so in the row (once per open period), so the sweeper leaves it alone.
      await this.postpone(deliveryId, retryAt);
      return { done: false, retryAt };
    }

    const d = await this.claim(deliveryId);
    if (!d) return { done: false, retryAt: Date.now() + HALF_OPEN_POLL_MS }; // taken meanwhile

    const startedAt = new Date();
    let secrets: string[];
    try {
      secrets = this.signingSecrets(d, startedAt);
    } catch (err) {
      // Our configuration, not the endpoint: an attempt that says so, retried on the
      // schedule (an operator restoring the key lets it through), no circuit report.
      const error = `the webhook's secret cannot be decrypted: ${(err as Error).message}`;
      this.logger.error({ webhookId: d.webhook_id, err: (err as Error).message }, error);
      return this.record(
        d,
        startedAt,
        { statusCode: null, durationMs: 0, error, responseExcerpt: null, retryAfter: undefined },
        'retry',
      );
    }
    const body = JSON.stringify({
      type: d.type,
      timestamp: d.event_created_at.toISOString(),
      data: d.payload,
    });
    const timestamp = Math.floor(startedAt.getTime() / 1000);
    const result = await this.http.post(
      d.url,
      {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'webhook-id': d.event_id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(secrets, d.event_id, timestamp, body),
      },
      body,
    );
    const outcome = classifyStatus(result.statusCode);
    // A breaker hiccup must not lose the attempt's record: report it, but don't depend on it.
    await this.breaker
      .report({ projectId: d.project_id, url: d.url }, !isEndpointFailure(result.statusCode))
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'circuit report failed'));
    this.attemptsTotal.inc({ outcome });
    this.attemptDuration.observe(result.durationMs / 1000);

    return this.record(d, startedAt, result, outcome);
  }

  /**
   * Pending deliveries more than a minute overdue: their job went missing (a crash between
   * commit and enqueue, Redis losing data) or sits delayed past a retry that was asked for
   * while Redis was away. Each is made to run now.
   */
  async sweep(limit = 500): Promise<number> {
    const rows: Array<{ id: string; project_id: string }> = await this.dataSource.query(
      `SELECT id, project_id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at < now() - interval '60 seconds'
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY next_attempt_at LIMIT $1`,
      [limit],
    );
    for (const r of rows) await this.deliveryQueue.runNow(r.project_id, r.id);
    return rows.length;
  }

  /** Whether the delivery is due now (with its webhook's URL), or when to look again. */
  private async due(
    deliveryId: string,
  ): Promise<DeliveryStep | { url: string; enabled: boolean; projectId: string }> {
    const [row] = (await this.dataSource.query(
      `SELECT d.status, d.next_attempt_at, d.lease_until, now() AS now, w.url, w.enabled, d.project_id,
              (e.id IS NOT NULL) AS has_event
         FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         LEFT JOIN alert_events e ON e.id = d.event_id
        WHERE d.id = $1`,
      [deliveryId],
    )) as Array<{
      status: string;
      next_attempt_at: Date | null;
      lease_until: Date | null;
      now: Date;
      url: string;
      enabled: boolean;
      project_id: string;
      has_event: boolean;
    }>;
    if (!row || row.status !== 'pending') return { done: true };
    if (!row.has_event) {
      await this.finish(deliveryId, 'the alert event no longer exists');
      return { done: true };
    }
    const now = row.now.getTime();
    const waitUntil = Math.max(
      row.next_attempt_at?.getTime() ?? 0,
      row.lease_until && row.lease_until > row.now ? row.lease_until.getTime() : 0,
    );
    if (waitUntil > now + 50) return { done: false, retryAt: toLocalTime(waitUntil, row.now) };
    return { url: row.url, enabled: row.enabled, projectId: row.project_id };
  }

  /**
   * Takes the delivery for one attempt: a lease with a token in the row. Only the token's
   * holder may record the outcome, so a sender that lost its lease (stalled past it, while
   * another worker took over) can't overwrite a newer result. Null when someone else has it.
   */
  private async claim(deliveryId: string): Promise<ClaimedDelivery | null> {
    const [rows] = (await this.dataSource.query(
      `UPDATE webhook_deliveries d
          SET lease_until = now() + $2 * interval '1 millisecond', lease_token = gen_random_uuid()
         FROM webhooks w, alert_events e
        WHERE d.id = $1 AND w.id = d.webhook_id AND e.id = d.event_id
          AND d.status = 'pending' AND w.enabled
          AND (d.lease_until IS NULL OR d.lease_until < now())
          AND d.next_attempt_at <= now() + interval '50 milliseconds'
       RETURNING d.id, d.lease_token, d.project_id, d.webhook_id, d.event_id,
                 w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                 e.type, e.payload, e.created_at AS event_created_at`,
      [deliveryId, this.leaseMs],
    )) as [ClaimedDelivery[], number];
    return rows[0] ?? null;
  }

  /** The secrets that sign now: the current one and, until it expires, the previous one. */
  private signingSecrets(d: ClaimedDelivery, at: Date): string[] {
    const secrets = [this.secrets.open(d.webhook_id, d.secret)];
    if (d.previous_secret && d.previous_secret_expires_at && d.previous_secret_expires_at > at)
      secrets.push(this.secrets.open(d.webhook_id, d.previous_secret));
    return secrets;
  }

  /** Not before `retryAt`, without using an attempt (an open circuit). */
  private async postpone(deliveryId: string, retryAt: number): Promise<void> {
    await this.dataSource.query(
      `UPDATE webhook_deliveries SET next_attempt_at = $2, updated_at = now()
        WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now())`,
      [deliveryId, new Date(retryAt)],
    );
  }

  private async finish(deliveryId: string, error: string): Promise<void> {
    const [, count] = (await this.dataSource.query(
      `UPDATE webhook_deliveries
          SET status = 'failed', last_error = $2, next_attempt_at = NULL, updated_at = now()
        WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now())`,
      [deliveryId, error],
    )) as [unknown, number];
    if (count > 0) this.finished.inc({ status: 'failed' });
  }

  /** The attempt and its consequence, in one transaction. */
  private async record(
    d: ClaimedDelivery,
    startedAt: Date,
    result: SendResult,
    outcome: ReturnType<typeof classifyStatus>,
  ): Promise<DeliveryStep> {
    let error = result.error;
    // The delay before each possible next attempt, jittered; SQL picks the one that applies.
    let delays: number[] = [];
    if (outcome === 'gone')
      error = '410 Gone: the endpoint asked for no more deliveries; webhook disabled';
    else if (outcome === 'retry') {
      const asked = honoursRetryAfter(result.statusCode)
        ? parseRetryAfter(result.retryAfter, startedAt.getTime())
        : null;
      delays = this.schedule.map(
        (_, i) => asked ?? retryDelayMs(this.schedule, i + 1, Math.random())!,
      );
      error ??= `endpoint answered ${result.statusCode}`;
    }

    const row = await this.dataSource.transaction(async (em) => {
      // Counted from the row as it is now, not as claimed: a manual retry that landed while
      // this attempt was in flight (it resets schedule_offset) is honoured, not overwritten.
      const [rows] = (await em.query(
        `UPDATE webhook_deliveries
            SET attempts = attempts + 1,
                status = CASE WHEN $2 = 'succeeded' THEN 'succeeded'
                              WHEN $2 = 'gone' THEN 'failed'
                              WHEN ($5::int[])[attempts + 1 - schedule_offset] IS NULL THEN 'failed'
                              ELSE 'pending' END,
                next_attempt_at = CASE WHEN $2 = 'retry'
                  THEN now() + ($5::int[])[attempts + 1 - schedule_offset] * interval '1 millisecond' END,
                last_status_code = $3, last_error = $4, lease_until = NULL, lease_token = NULL,
                updated_at = now(),
                delivered_at = CASE WHEN $2 = 'succeeded' THEN now() ELSE delivered_at END
          WHERE id = $1 AND lease_token = $6
        RETURNING attempts, status, next_attempt_at, now() AS now`,
        [
          d.id,
          outcome,
          result.statusCode,
          outcome === 'succeeded' ? null : error,
          delays,
          d.lease_token,
        ],
      )) as [
        Array<{ attempts: number; status: string; next_attempt_at: Date | null; now: Date }>,
        number,
      ];
      // Deleted with its webhook meanwhile, or our lease was taken over: not ours to record.
      if (rows.length === 0) return null;
      await em.query(
        `INSERT INTO webhook_attempts
                (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (delivery_id, attempt) DO NOTHING`,
        [
          d.id,
          rows[0].attempts,
          startedAt,
          result.durationMs,
          result.statusCode,
          result.error,
          result.responseExcerpt,
        ],
      );
      if (outcome === 'gone') {
        await em.query(
          `UPDATE webhooks SET enabled = false, updated_at = now(),
                  disabled_reason = 'the endpoint answered 410 Gone at ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            WHERE id = $1`,
          [d.webhook_id],
        );
      }
      return rows[0];
    });
    if (!row) return { done: true };

    if (row.status !== 'pending') this.finished.inc({ status: row.status });
    if (row.status === 'succeeded')
      this.eventLatency.observe((Date.now() - d.event_created_at.getTime()) / 1000);
    if (outcome === 'gone')
      this.logger.warn(
        { webhookId: d.webhook_id, url: d.url },
        'endpoint answered 410: webhook disabled',
      );
    if (row.status !== 'pending' || !row.next_attempt_at) return { done: true };
    return { done: false, retryAt: toLocalTime(row.next_attempt_at.getTime(), row.now) };
  }
}
