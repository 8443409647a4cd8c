import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Orgs → projects → API keys and devices. Names are unique case-insensitively, which is
 * what people mean by "a project called Foo already exists".
 *
 * Timestamps are timestamptz(3): millisecond precision round-trips exactly through a JS
 * Date, which keyset cursors on (created_at, id) depend on (microseconds would make a
 * cursor compare below its own row and repeat it).
 */
export class Tenancy1764250000000 implements MigrationInterface {
  name = 'Tenancy1764250000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE orgs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX orgs_name_key ON orgs (lower(name))`);

    await q.query(`
      CREATE TABLE projects (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
        name text NOT NULL,
        auto_register_devices boolean NOT NULL DEFAULT true,
        created_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX projects_org_name_key ON projects (org_id, lower(name))`);

    // prefix is the public half of "<prefix>.<secret>": looked up on every uncached
    // request, so it is unique and indexed; the secret is only ever stored as a bcrypt hash.
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        name text NOT NULL DEFAULT '',
        prefix text NOT NULL,
        secret_hash text NOT NULL,
        scopes text[] NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        last_used_at timestamptz(3),
        revoked_at timestamptz(3)
      )`);
    await q.query(`CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix)`);
    await q.query(`CREATE INDEX api_keys_project_idx ON api_keys (project_id, created_at, id)`);
    // Every api replica asks "revoked since my last look?" each second.
    await q.query(
      `CREATE INDEX api_keys_revoked_idx ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL`,
    );

    await q.query(`
      CREATE TABLE devices (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
        external_id text NOT NULL,
        name text,
        tags text[] NOT NULL DEFAULT '{}',
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        last_seen_at timestamptz(3)
      )`);
    await q.query(
      `CREATE UNIQUE INDEX devices_project_external_key ON devices (project_id, external_id)`,
    );
    await q.query(
      `CREATE INDEX devices_project_created_idx ON devices (project_id, created_at, id)`,
    );
    // `?tag=` filters and TAG-scoped rules look devices up by tag.
    await q.query(`CREATE INDEX devices_tags_idx ON devices USING gin (tags)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE devices`);
    await q.query(`DROP TABLE api_keys`);
    await q.query(`DROP TABLE projects`);
    await q.query(`DROP TABLE orgs`);
  }
}
