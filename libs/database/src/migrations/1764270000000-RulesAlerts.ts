import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rules, their per-device evaluation state, alerts, and the outbox of alert events.
 * The partial unique index is the backstop of "each alert opens exactly once": at most one
 * open or acknowledged alert per rule and device, whatever the evaluators do.
 */
export class RulesAlerts1764270000000 implements MigrationInterface {
  name = 'RulesAlerts1764270000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name text NOT NULL,
        metric text NOT NULL,
        operator text NOT NULL CHECK (operator IN ('>', '>=', '<', '<=', '==', '!=')),
        threshold double precision NOT NULL,
        window_n integer NOT NULL CHECK (window_n BETWEEN 1 AND 1000),
        required_k integer NOT NULL CHECK (required_k >= 1 AND required_k <= window_n),
        cooldown_seconds integer NOT NULL CHECK (cooldown_seconds >= 0),
        scope text NOT NULL CHECK (scope IN ('ALL', 'TAG', 'EXPLICIT')),
        tag text,
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        CHECK ((scope = 'TAG') = (tag IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX rules_project_idx ON rules (project_id, created_at, id)`);

    await q.query(`
      CREATE TABLE rule_devices (
        rule_id uuid NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
        device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        PRIMARY KEY (rule_id, device_id)
      )`);
    await q.query(`CREATE INDEX rule_devices_device_idx ON rule_devices (device_id)`);

    // At most window_n points per rule and device: evaluation never re-reads history.
    await q.query(`
      CREATE TABLE rule_device_state (
        rule_id uuid NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        "window" jsonb NOT NULL,
        last_triggered_at timestamptz(3),
        PRIMARY KEY (rule_id, device_id)
      )`);

    // No foreign key to rules: alerts outlive a deleted rule (details keep the rule as it was).
    await q.query(`
      CREATE TABLE alerts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        rule_id uuid NOT NULL,
        device_id uuid NOT NULL,
        status text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
        triggered_at timestamptz(3) NOT NULL,
        acknowledged_at timestamptz(3),
        resolved_at timestamptz(3),
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        details jsonb NOT NULL
      )`);
    await q.query(
      `CREATE UNIQUE INDEX alerts_one_active_key ON alerts (rule_id, device_id) WHERE status IN ('open', 'acknowledged')`,
    );
    await q.query(
      `CREATE INDEX alerts_project_idx ON alerts (project_id, triggered_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX alerts_device_idx ON alerts (device_id, triggered_at DESC, id DESC)`,
    );

    // Transactional outbox: written with the alert change, handed to a queue after commit.
    await q.query(`
      CREATE TABLE alert_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        alert_id uuid NOT NULL,
        type text NOT NULL CHECK (type IN ('alert.created', 'alert.acknowledged', 'alert.resolved')),
        payload jsonb NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        dispatched_at timestamptz(3)
      )`);
    await q.query(
      `CREATE INDEX alert_events_pending_idx ON alert_events (created_at) WHERE dispatched_at IS NULL`,
    );

    // Readings up to this ts have been evaluated; older ones arriving later are "late".
    await q.query(`ALTER TABLE devices ADD COLUMN evaluated_until timestamptz(3)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE devices DROP COLUMN evaluated_until`);
    await q.query(`DROP TABLE alert_events`);
    await q.query(`DROP TABLE alerts`);
    await q.query(`DROP TABLE rule_device_state`);
    await q.query(`DROP TABLE rule_devices`);
    await q.query(`DROP TABLE rules`);
  }
}
