import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { DeliveryStatus } from './entities/webhook-delivery.entity';
import { AttemptOutcome } from './retry-schedule';

/** What the fan-out knows of the alert event it creates deliveries for. */
export interface FanOutEvent {
  id: string;
  projectId: string;
  type: string;
  createdAt: Date;
}

/** A delivery and the project it belongs to (and its event): what a delivery job carries. */
export interface DeliveryRef {
  deliveryId: string;
  projectId: string;
  eventId?: string;
}

/** A delivery as the sender reads it before deciding anything (no write). */
export interface DueDelivery {
  status: DeliveryStatus;
  nextAttemptAt: Date | null;
  leaseUntil: Date | null;
  /** The database's `now()` at the read, for comparing the two above. */
  now: Date;
  projectId: string;
  webhookId: string;
  eventId: string;
  url: string;
  enabled: boolean;
}

/** A delivery taken for one attempt, with what signing and sending need of its webhook. */
export interface ClaimedDelivery {
  id: string;
  leaseToken: string;
  projectId: string;
  webhookId: string;
  eventId: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

/** One attempt's outcome, as the ledger records it. */
export interface AttemptRecord {
  outcome: AttemptOutcome;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  /** The attempt's own error (kept with the attempt). */
  error: string | null;
  /** What the delivery's `last_error` says (null when it succeeded). */
  lastError: string | null;
  responseExcerpt: string | null;
  /** The delay (ms) before each possible next attempt; the row's count picks the one that applies. */
  delaysMs: number[];
}

/** The delivery after an attempt was recorded. */
export interface RecordedAttempt {
  attempts: number;
  status: DeliveryStatus;
  nextAttemptAt: Date | null;
  /** The database's `now()` at the write. */
  now: Date;
}

/** A webhook's stored secrets (sealed, or plain from before encryption at rest). */
export interface StoredSecrets {
  webhookId: string;
  secret: string;
  previousSecret: string | null;
}

/**
 * The worker's side of `webhook_deliveries`, `webhook_attempts` and `webhooks`: creating
 * an event's deliveries, every step of sending one, and re-sealing stored secrets. Keyed
 * by the delivery (or webhook) id at hand, whose project was checked when its job was
 * queued, or across every project (the secrets' re-seal): no project scope here, which is
 * why this is a class of its own, provided only in the worker and never given to the api.
 * The transaction manager comes first where there is one.
 */
@Injectable()
export class DeliveryLedgerRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * In the caller's transaction: for each event, one pending delivery per enabled webhook
   * of its project that takes its type and existed when it happened (a delivery that
   * already exists is left alone: unique (webhook_id, event_id)). Returns every pending
   * delivery of the events, created now or before, in the events' order: one statement
   * however many events an evaluation wrote.
   */
  async createForEvents(em: EntityManager, events: FanOutEvent[]): Promise<DeliveryRef[]> {
    if (events.length === 0) return [];
    const rows = (await em.query(
      `WITH ev AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])
                  WITH ORDINALITY AS e(id, project_id, type, created_at, n)),
       created AS (
         INSERT INTO webhook_deliveries
                (project_id, webhook_id, event_id, event_type, status, next_attempt_at)
         SELECT w.project_id, w.id, ev.id, ev.type, 'pending', now()
           FROM ev JOIN webhooks w
             ON w.project_id = ev.project_id AND w.enabled AND ev.type = ANY (w.event_types)
            AND w.created_at <= ev.created_at
         ON CONFLICT (webhook_id, event_id) DO NOTHING
         RETURNING id, project_id, event_id)
       SELECT c.id AS "deliveryId", c.project_id AS "projectId", c.event_id AS "eventId", ev.n
         FROM created c JOIN ev ON ev.id = c.event_id
       UNION
       SELECT d.id, d.project_id, d.event_id, ev.n
         FROM ev JOIN webhooks w ON w.project_id = ev.project_id
         JOIN webhook_deliveries d ON d.webhook_id = w.id AND d.event_id = ev.id
        WHERE d.status = 'pending'
       ORDER BY n`,
      [
        events.map((e) => e.id),
        events.map((e) => e.projectId),
        events.map((e) => e.type),
        events.map((e) => e.createdAt),
      ],
    )) as Array<DeliveryRef & { n: string }>;
    return rows.map(({ deliveryId, projectId, eventId }) => ({ deliveryId, projectId, eventId }));
  }

  /** The delivery with its webhook's URL and state; null when it no longer exists. */
  async due(deliveryId: string): Promise<DueDelivery | null> {
    const [row] = (await this.dataSource.query(
      `SELECT d.status, d.next_attempt_at AS "nextAttemptAt", d.lease_until AS "leaseUntil",
              now() AS now, d.project_id AS "projectId", d.webhook_id AS "webhookId",
              d.event_id AS "eventId", w.url, w.enabled
         FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.id = $1`,
      [deliveryId],
    )) as DueDelivery[];
    return row ?? null;
  }

  /**
   * Takes the delivery for one attempt of at most `leaseMs`: a lease with a fresh token in
   * the row, only while it is pending, due, not leased and its webhook enabled. Null when
   * it is not to be had (someone else has it, or it changed since it was read).
   */
  async claim(deliveryId: string, leaseMs: number): Promise<ClaimedDelivery | null> {
    const [rows] = (await this.dataSource.query(
      `UPDATE webhook_deliveries d
          SET lease_until = now() + $2 * interval '1 millisecond', lease_token = gen_random_uuid()
         FROM webhooks w
        WHERE d.id = $1 AND w.id = d.webhook_id
          AND d.status = 'pending' AND w.enabled
          AND (d.lease_until IS NULL OR d.lease_until < now())
          AND d.next_attempt_at <= now() + interval '50 milliseconds'
       RETURNING d.id, d.lease_token AS "leaseToken", d.project_id AS "projectId",
                 d.webhook_id AS "webhookId", d.event_id AS "eventId", w.url, w.secret,
                 w.previous_secret AS "previousSecret",
                 w.previous_secret_expires_at AS "previousSecretExpiresAt"`,
      [deliveryId, leaseMs],
    )) as [ClaimedDelivery[], number];
    return rows[0] ?? null;
  }

  /** Not before `at`, without using an attempt; only while pending and not leased. */
  async postpone(deliveryId: string, at: Date): Promise<void> {
    await this.dataSource.query(
      `UPDATE webhook_deliveries SET next_attempt_at = $2, updated_at = now()
        WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now())`,
      [deliveryId, at],
    );
  }

  /**
   * Fails the delivery for good with `error`, without an attempt; only while pending and
   * not leased. Whether it did.
   */
  async finish(deliveryId: string, error: string): Promise<boolean> {
    const [, count] = (await this.dataSource.query(
      `UPDATE webhook_deliveries
          SET status = 'failed', last_error = $2, next_attempt_at = NULL, updated_at = now()
        WHERE id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < now())`,
      [deliveryId, error],
    )) as [unknown, number];
    return count > 0;
  }

  /**
   * An attempt and its consequence, in one transaction: the delivery's count, status and
   * next attempt (a retry past the schedule fails it), the attempt row, and on `gone` the
   * webhook disabled. Only the lease token's holder records: null when the delivery is
   * gone (deleted with its webhook) or its lease was taken over meanwhile.
   */
  async recordAttempt(
    claim: Pick<ClaimedDelivery, 'id' | 'leaseToken' | 'webhookId'>,
    attempt: AttemptRecord,
  ): Promise<RecordedAttempt | null> {
    return this.dataSource.transaction(async (em) => {
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
        RETURNING attempts, status, next_attempt_at AS "nextAttemptAt", now() AS now`,
        [
          claim.id,
          attempt.outcome,
          attempt.statusCode,
          attempt.lastError,
          attempt.delaysMs,
          claim.leaseToken,
        ],
      )) as [RecordedAttempt[], number];
      const row = rows[0];
      if (!row) return null;
      await em.query(
        `INSERT INTO webhook_attempts
                (delivery_id, attempt, started_at, duration_ms, status_code, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (delivery_id, attempt) DO NOTHING`,
        [
          claim.id,
          row.attempts,
          attempt.startedAt,
          attempt.durationMs,
          attempt.statusCode,
          attempt.error,
          attempt.responseExcerpt,
        ],
      );
      if (attempt.outcome === 'gone') {
        await em.query(
          `UPDATE webhooks SET enabled = false, updated_at = now(),
                  disabled_reason = 'the endpoint answered 410 Gone at ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            WHERE id = $1`,
          [claim.webhookId],
        );
      }
      return row;
    });
  }

  /**
   * Up to `limit` pending deliveries more than a minute overdue and not leased, most
   * overdue first: the delivery sweeper's work.
   */
  async overdue(limit: number): Promise<DeliveryRef[]> {
    return this.dataSource.query(
      `SELECT id AS "deliveryId", project_id AS "projectId", event_id AS "eventId"
         FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at < now() - interval '60 seconds'
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY next_attempt_at LIMIT $1`,
      [limit],
    ) as Promise<DeliveryRef[]>;
  }

  /**
   * Up to `limit` webhooks, by id after `afterId`, whose secret or previous secret is not
   * sealed with key `keyId` (plain, or sealed with another key).
   */
  async secretsToReseal(afterId: string, keyId: string, limit: number): Promise<StoredSecrets[]> {
    return this.dataSource.query(
      `SELECT id AS "webhookId", secret, previous_secret AS "previousSecret" FROM webhooks
        WHERE id > $1 AND (secret NOT LIKE 'v1:%' OR split_part(secret, ':', 2) <> $2
              OR previous_secret NOT LIKE 'v1:%' OR split_part(previous_secret, ':', 2) <> $2)
        ORDER BY id LIMIT $3`,
      [afterId, keyId, limit],
    ) as Promise<StoredSecrets[]>;
  }

  /** Writes `next` only if the row still holds `read`; whether it did. */
  async replaceSecrets(
    read: StoredSecrets,
    next: Omit<StoredSecrets, 'webhookId'>,
  ): Promise<boolean> {
    const [, count] = (await this.dataSource.query(
      `UPDATE webhooks SET secret = $2, previous_secret = $3
        WHERE id = $1 AND secret = $4 AND previous_secret IS NOT DISTINCT FROM $5`,
      [read.webhookId, next.secret, next.previousSecret, read.secret, read.previousSecret],
    )) as [unknown, number];
    return count > 0;
  }
}
