import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reminders (docs/rules.md#reminders): a rule's `reminder_interval_seconds`, and on each
 * alert how many `alert.reminder` events it has had (the reminder job's idempotency key:
 * reminder n is written only while `reminders_sent` is below n), and an index of the
 * alerts that remind (the sweep that re-schedules a reminder Redis lost reads it).
 */
export class Reminders1764370000000 implements MigrationInterface {
  name = 'Reminders1764370000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE rules ADD COLUMN reminder_interval_seconds integer
        CONSTRAINT rules_reminder_interval_check CHECK (reminder_interval_seconds > 0)`);
    await q.query(`ALTER TABLE alerts ADD COLUMN reminders_sent integer NOT NULL DEFAULT 0`);
    await q.query(`
      CREATE INDEX alerts_reminding_idx ON alerts (created_at)
       WHERE status = 'open' AND (details -> 'rule' ->> 'reminder_interval_seconds') IS NOT NULL`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved',
                        'alert.reminder', 'webhook.test'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM webhook_deliveries WHERE event_type = 'alert.reminder'`);
    await q.query(`DELETE FROM alert_events WHERE type = 'alert.reminder'`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved', 'webhook.test'))`);
    await q.query(`DROP INDEX alerts_reminding_idx`);
    await q.query(`ALTER TABLE alerts DROP COLUMN reminders_sent`);
    await q.query(`ALTER TABLE rules DROP COLUMN reminder_interval_seconds`);
  }
}
