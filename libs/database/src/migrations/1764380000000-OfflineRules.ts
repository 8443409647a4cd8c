import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Offline rules (docs/rules.md#offline-rules): `rules.kind` ('threshold', every rule so
 * far, or 'offline'), an offline rule's `offline_after_seconds` and its scan watermark
 * `offline_scanned_until`; an offline rule has no metric, operator, threshold or window.
 * `devices (project_id, last_seen_at)` is what the scan reads: the devices of a project
 * last heard from in a range of arrival time. The two event types it sends.
 */
export class OfflineRules1764380000000 implements MigrationInterface {
  name = 'OfflineRules1764380000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE rules
        ADD COLUMN kind text NOT NULL DEFAULT 'threshold'
          CONSTRAINT rules_kind_check CHECK (kind IN ('threshold', 'offline')),
        ADD COLUMN offline_after_seconds integer
          CONSTRAINT rules_offline_after_check CHECK (offline_after_seconds > 0),
        ADD COLUMN offline_scanned_until timestamptz,
        ALTER COLUMN metric DROP NOT NULL,
        ALTER COLUMN operator DROP NOT NULL,
        ALTER COLUMN threshold DROP NOT NULL,
        ALTER COLUMN window_n DROP NOT NULL,
        ALTER COLUMN required_k DROP NOT NULL,
        ADD CONSTRAINT rules_kind_fields_check CHECK (
          CASE kind
            WHEN 'offline' THEN offline_after_seconds IS NOT NULL AND metric IS NULL
              AND operator IS NULL AND threshold IS NULL AND window_n IS NULL
              AND required_k IS NULL AND clear_threshold IS NULL AND clear_k IS NULL
            ELSE offline_after_seconds IS NULL AND metric IS NOT NULL AND operator IS NOT NULL
              AND threshold IS NOT NULL AND window_n IS NOT NULL AND required_k IS NOT NULL
          END)`);
    await q.query(`CREATE INDEX devices_project_seen_idx ON devices (project_id, last_seen_at)`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved',
                        'alert.reminder', 'device.offline', 'device.online', 'webhook.test'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `DELETE FROM webhook_deliveries WHERE event_type IN ('device.offline', 'device.online')`,
    );
    await q.query(`DELETE FROM alert_events WHERE type IN ('device.offline', 'device.online')`);
    await q.query(`ALTER TABLE alert_events DROP CONSTRAINT alert_events_type_check`);
    await q.query(`
      ALTER TABLE alert_events ADD CONSTRAINT alert_events_type_check
        CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved',
                        'alert.reminder', 'webhook.test'))`);
    await q.query(`DROP INDEX devices_project_seen_idx`);
    await q.query(`DELETE FROM rules WHERE kind = 'offline'`);
    await q.query(`
      ALTER TABLE rules
        DROP CONSTRAINT rules_kind_fields_check,
        DROP COLUMN kind, DROP COLUMN offline_after_seconds, DROP COLUMN offline_scanned_until,
        ALTER COLUMN metric SET NOT NULL, ALTER COLUMN operator SET NOT NULL,
        ALTER COLUMN threshold SET NOT NULL, ALTER COLUMN window_n SET NOT NULL,
        ALTER COLUMN required_k SET NOT NULL`);
  }
}
