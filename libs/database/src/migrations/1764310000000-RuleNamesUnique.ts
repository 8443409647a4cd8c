import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rule names are unique in their project, case-insensitively, as org and project names
 * are: a name is how a user tells rules apart in alerts and webhooks.
 *
 * Rules created before this migration may share a name. They are renamed rather than
 * failing the migration: in each project, the oldest rule of a name keeps it and each
 * later one gets the first free suffix " (2)", " (3)"… (the name cut so that it stays
 * within 200 characters). Alerts already raised keep the rule as it was in their details.
 */
export class RuleNamesUnique1764310000000 implements MigrationInterface {
  name = 'RuleNamesUnique1764310000000';

  async up(q: QueryRunner): Promise<void> {
    // One at a time, oldest first, so a suffix is never one another renamed rule took;
    // duplicates are expected to be few.
    await q.query(`
      DO $$
      DECLARE
        dup record;
        n integer;
        candidate text;
      BEGIN
        FOR dup IN
          SELECT id, project_id, name FROM (
            SELECT id, project_id, name,
                   row_number() OVER (PARTITION BY project_id, lower(name)
                                      ORDER BY created_at, id) AS nth
              FROM rules) ranked
           WHERE nth > 1
           ORDER BY project_id, lower(name), nth
        LOOP
          n := 2;
          LOOP
            candidate := left(dup.name, 200 - length(' (' || n || ')')) || ' (' || n || ')';
            EXIT WHEN NOT EXISTS (
              SELECT 1 FROM rules
               WHERE project_id = dup.project_id AND lower(name) = lower(candidate));
            n := n + 1;
          END LOOP;
          UPDATE rules SET name = candidate, updated_at = now() WHERE id = dup.id;
        END LOOP;
      END $$`);
    await q.query(`CREATE UNIQUE INDEX rules_project_name_key ON rules (project_id, lower(name))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX rules_project_name_key`);
  }
}
