import type { WorkerRole } from '@app/config';

/**
 * Queue names. These strings are persisted in Redis (they are part of every job key):
 * renaming one strands the jobs already queued under the old name.
 */
export const QUEUES = {
  /** Accepted `POST /telemetry` batches waiting to be written to PostgreSQL. */
  TELEMETRY_INGEST: 'telemetry-ingest',
  /** Devices whose new readings wait for rule evaluation. */
  RULE_EVALUATION: 'rule-evaluation',
  /** Alert events (from the outbox) waiting to be fanned out to webhook subscriptions. */
  ALERT_EVENTS: 'alert-events',
  /** Alert events waiting to be delivered to webhook subscribers. */
  WEBHOOK_DELIVERY: 'webhook-delivery',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The queue each worker role consumes (WORKER_QUEUES; the roles and their duties: libs/config). */
export const QUEUE_OF_ROLE: Record<WorkerRole, QueueName> = {
  ingest: QUEUES.TELEMETRY_INGEST,
  evaluate: QUEUES.RULE_EVALUATION,
  'alert-events': QUEUES.ALERT_EVENTS,
  deliver: QUEUES.WEBHOOK_DELIVERY,
};
