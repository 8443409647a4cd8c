import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `webhook.test` events (`POST /webhooks/{id}/test`) in the outbox: an event with no alert
 * behind it, sent to the one webhook asked for through the ordinary delivery path. Only a
 * test event may lack an alert, and every other event must have one.
 */
export class WebhookTestEvents1764320000000 implements MigrationInterface {
  name = 'WebhookTestEvents1764320000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE alert_events ALTER COLUMN alert_id DROP NOT NULL`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved', 'webhook.test'))`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_alert_id_check
        CHECK ((alert_id IS NULL) = (type = 'webhook.test'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM webhook_deliveries WHERE event_type = 'webhook.test'`);
    await q.query(`DELETE FROM alert_events WHERE type = 'webhook.test'`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_alert_id_check`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved'))`);
    await q.query(`ALTER TABLE alert_events ALTER COLUMN alert_id SET NOT NULL`);
  }
}
