import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A project's own retention (`retention_days`, `PATCH /projects/{id}`): its readings older
 * than that are deleted by the worker's maintenance duty. NULL keeps them as long as the
 * global `TELEMETRY_RETENTION_DAYS`. Nullable and without a default: adding it rewrites
 * nothing.
 */
export class ProjectRetention1764340000000 implements MigrationInterface {
  name = 'ProjectRetention1764340000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE projects ADD COLUMN retention_days integer
        CONSTRAINT projects_retention_days_check CHECK (retention_days BETWEEN 1 AND 36500)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE projects DROP COLUMN retention_days`);
  }
}
