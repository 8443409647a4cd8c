import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `dispatched_at` of an alert event now means "its webhook deliveries exist" (set by the
 * fan-out in the transaction that creates them), no longer "handed to the queue". When
 * the relay last handed it on is `relayed_at`: an event whose fan-out job failed or was
 * lost is handed on again a minute later, until its deliveries exist.
 */
export class OutboxRelayedAt1764290000000 implements MigrationInterface {
  name = 'OutboxRelayedAt1764290000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE alert_events ADD COLUMN relayed_at timestamptz(3)`);
    // Recent events relayed by the old code whose fan-out never ran: undispatched again, so
    // the relay hands them on (fan-out is idempotent per webhook and event). Older ones are
    // left alone: a week-old alert arriving now would be noise, not news.
    await q.query(`
      UPDATE alert_events e SET dispatched_at = NULL
       WHERE dispatched_at IS NOT NULL AND created_at > now() - interval '7 days'
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
         AND EXISTS (SELECT 1 FROM webhooks w
                      WHERE w.project_id = e.project_id AND w.enabled
                        AND e.type = ANY (w.event_types) AND w.created_at <= e.created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE alert_events DROP COLUMN relayed_at`);
  }
}
