import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Readings (or whole batches) that were accepted but that storage refused: a value
 * PostgreSQL cannot hold, or a batch that kept failing for an unexpected reason. They are
 * set aside here with the reason instead of blocking the device's later batches, and the
 * project can read them (`GET /projects/{id}/rejected-readings`).
 *
 * `reading` and `payload` are JSON text, not jsonb: what was refused may be exactly what
 * jsonb refuses (a NUL escape, say). The unique key makes setting aside idempotent: a
 * batch applied again after a crash records each refusal once. `event_index` is -1 for a
 * whole batch.
 */
export class TelemetryRejections1764300000000 implements MigrationInterface {
  name = 'TelemetryRejections1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE telemetry_rejections (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        device_id uuid NOT NULL,
        batch_id uuid NOT NULL,
        event_index integer NOT NULL,
        ts text,
        reading text,
        payload text,
        reason text NOT NULL,
        sqlstate text,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        UNIQUE (batch_id, event_index)
      )`);
    await q.query(
      `CREATE INDEX telemetry_rejections_project_idx ON telemetry_rejections (project_id, created_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX telemetry_rejections_device_idx ON telemetry_rejections (device_id, created_at DESC, id DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE telemetry_rejections`);
  }
}
