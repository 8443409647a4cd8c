import { buildDataSourceOptions, ensureDatabase, migrations, runMigrations } from '@app/database';
import { dropDatabase, sideDatabaseUrl } from '@app/testing';
import { Client } from 'pg';
import { DataSource } from 'typeorm';

/**
 * Migration 1764310000000 makes rule names unique per project, case-insensitively. A
 * database that already holds rules sharing a name must still migrate: the oldest rule of
 * a name keeps it, later ones get the first free " (n)" suffix.
 */
describe('migration: rule names unique per project (integration)', () => {
  const url = sideDatabaseUrl('rule_names');
  const before = migrations.findIndex((m) => m.name === 'RuleNamesUnique1764310000000');

  afterAll(() => dropDatabase(url));

  it('renames later duplicates instead of failing, then refuses new ones', async () => {
    expect(before).toBeGreaterThan(0);
    await ensureDatabase(url);
    // The schema as it was before this migration.
    const old = new DataSource({
      ...buildDataSourceOptions({ url, poolSize: 2 }, 'rule-names-test'),
      migrations: migrations.slice(0, before),
    });
    await old.initialize();
    await old.runMigrations({ transaction: 'each' });
    await old.destroy();

    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      const [{ id: orgId }] = (await c.query(`INSERT INTO orgs (name) VALUES ('org') RETURNING id`))
        .rows;
      const project = async (projectName: string): Promise<string> =>
        (
          await c.query(`INSERT INTO projects (org_id, name) VALUES ($1, $2) RETURNING id`, [
            orgId,
            projectName,
          ])
        ).rows[0].id;
      const a = await project('a');
      const b = await project('b');
      let second = 0;
      const rule = async (projectId: string, ruleName: string): Promise<string> =>
        (
          await c.query(
            `INSERT INTO rules (project_id, name, metric, operator, threshold, window_n,
                                required_k, cooldown_seconds, scope, created_at)
             VALUES ($1, $2, 't', '>', 1, 1, 1, 0, 'ALL', $3) RETURNING id`,
            [projectId, ruleName, new Date(Date.UTC(2025, 0, 1, 0, 0, second++))],
          )
        ).rows[0].id;
      const long = 'x'.repeat(200);
      const ids = {
        hot: await rule(a, 'Hot'),
        taken: await rule(a, 'hot (2)'),
        hot2: await rule(a, 'hot'),
        hot3: await rule(a, 'HOT'),
        cold: await rule(a, 'Cold'),
        long: await rule(a, long),
        long2: await rule(a, long.toUpperCase()),
        other: await rule(b, 'hot'),
      };

      const result = await runMigrations({ url, poolSize: 2 });
      expect(result.applied).toContain('RuleNamesUnique1764310000000');

      const names = Object.fromEntries(
        (await c.query(`SELECT id, name FROM rules`)).rows.map((r) => [r.id, r.name]),
      );
      expect(Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, names[id]]))).toEqual({
        hot: 'Hot',
        taken: 'hot (2)',
        hot2: 'hot (3)',
        hot3: 'HOT (4)',
        cold: 'Cold',
        long,
        long2: `${'X'.repeat(196)} (2)`,
        other: 'hot',
      });

      // From now on the index refuses a duplicate, in any case, within a project only.
      await expect(rule(a, 'cold')).rejects.toMatchObject({ code: '23505' });
      await expect(rule(b, 'Cold')).resolves.toEqual(expect.any(String));
    } finally {
      await c.end();
    }
  });
});
