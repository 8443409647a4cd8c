import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Silences (docs/rules.md#silences): while one matches an alert, its events are written
 * and kept but sent to no webhook. `alert_events.silenced_by` records the silence that
 * muted an event, `unmuted_at` when it was handed on after all; `alerts.silenced_by` the
 * last silence that muted one of its events, and `notify_pending` that the alert, still
 * active, has a muted event to send once no silence covers it any more (a partial index:
 * the release duty reads only those).
 */
export class Silences1764360000000 implements MigrationInterface {
  name = 'Silences1764360000000';

  async up(q: QueryRunner): Promise<void> {
    // No foreign keys to rules or devices: a silence's record outlives what it matched.
    await q.query(`
      CREATE TABLE silences (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        rule_id uuid,
        device_id uuid,
        tag text,
        starts_at timestamptz(3) NOT NULL,
        ends_at timestamptz(3) NOT NULL,
        comment text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT silences_period_check CHECK (ends_at > starts_at),
        CONSTRAINT silences_matcher_check
          CHECK (rule_id IS NOT NULL OR device_id IS NOT NULL OR tag IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX silences_project_idx ON silences (project_id, created_at, id)`);
    await q.query(`CREATE INDEX silences_active_idx ON silences (project_id, ends_at)`);
    await q.query(`
      ALTER TABLE alert_events
        ADD COLUMN silenced_by uuid,
        ADD COLUMN unmuted_at timestamptz(3)`);
    await q.query(`
      ALTER TABLE alerts
        ADD COLUMN silenced_by uuid,
        ADD COLUMN notify_pending boolean NOT NULL DEFAULT false`);
    await q.query(`CREATE INDEX alerts_notify_pending_idx ON alerts (id) WHERE notify_pending`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX alerts_notify_pending_idx`);
    await q.query(`ALTER TABLE alerts DROP COLUMN silenced_by, DROP COLUMN notify_pending`);
    await q.query(`ALTER TABLE alert_events DROP COLUMN silenced_by, DROP COLUMN unmuted_at`);
    await q.query(`DROP TABLE silences`);
  }
}
