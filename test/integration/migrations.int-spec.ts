import { migrations, runMigrations } from '@app/database';
import { dropDatabase, sideDatabaseUrl } from '@app/testing';
import { Client } from 'pg';

/** `npm run migration:run` from several processes at once (e.g. every pod of a Job). */
describe('migrations (integration)', () => {
  const url = sideDatabaseUrl('migrations');

  afterAll(() => dropDatabase(url));

  // A migration that builds an index CONCURRENTLY waits for every transaction holding a
  // snapshot: the runs waiting for the lock must hold none (they once deadlocked it).
  it('creates the database, applies each migration once under concurrency, and is idempotent', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => runMigrations({ url, poolSize: 2 })),
    );
    const applied = results.flatMap((r) => r.applied);
    // Every migration once, in timestamp order (the class name is the migration's name).
    const names = migrations.map((m) => m.name);
    expect(applied).toEqual(names);
    expect([...names].sort((a, b) => Number(a.slice(-13)) - Number(b.slice(-13)))).toEqual(names);
    expect(results.filter((r) => r.createdDatabase)).toHaveLength(1);

    const again = await runMigrations({ url, poolSize: 2 });
    expect(again).toEqual({ applied: [], createdDatabase: false });

    const c = new Client({ connectionString: url });
    await c.connect();
    try {
      const tables = await c.query(
        `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
      );
      expect(tables.rows.map((r) => r.tablename)).toEqual(
        expect.arrayContaining([
          'api_keys',
          'devices',
          'orgs',
          'projects',
          'schema_migrations',
          'telemetry',
          'webhook_attempts',
          'webhook_deliveries',
          'webhooks',
        ]),
      );
      // An index built CONCURRENTLY while the other runs waited: built, and valid.
      const invalid = await c.query(
        `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE NOT i.indisvalid`,
      );
      expect(invalid.rows).toEqual([]);
      const built = await c.query(
        `SELECT 1 FROM pg_class WHERE relname = 'alert_events_undispatched_alert_idx'`,
      );
      expect(built.rowCount).toBe(1);
    } finally {
      await c.end();
    }
  });
});
