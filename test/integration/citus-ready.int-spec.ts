import { buildDataSourceOptions } from '@app/database';
import { testRunEnv } from '@app/testing';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';

const ROOT = join(__dirname, '../..');

/** The tables a Citus cluster would distribute by `device_id` (docs/scaling.md). */
const DISTRIBUTED = ['telemetry', 'rule_device_state'];

/** The repositories of the pipeline and the per-device reads, where those tables are used. */
const DEVICE_PATH = [
  'libs/telemetry/src/telemetry.repository.ts',
  'libs/rules/src/device-rules.repository.ts',
];

/**
 * The schema stays ready to distribute the device-keyed tables by `device_id` on Citus:
 * no foreign key points into them, every unique index on them includes `device_id` (Citus
 * enforces uniqueness within a shard only), and every statement of the pipeline and the
 * per-device reads on them names `device_id` (a single-shard query). On the migrated test
 * database and on the repositories' SQL.
 */
describe('ready to distribute by device (integration)', () => {
  let db: DataSource;

  beforeAll(async () => {
    db = new DataSource(
      buildDataSourceOptions({ url: testRunEnv().databaseUrl, poolSize: 1 }, 'citus-ready'),
    );
    await db.initialize();
  });
  afterAll(() => db?.destroy());

  it('has no foreign key into a distributed table', async () => {
    const fks = await db.query(
      `SELECT conrelid::regclass::text AS from_table, confrelid::regclass::text AS to_table
         FROM pg_constraint WHERE contype = 'f' AND confrelid::regclass::text = ANY ($1)`,
      [DISTRIBUTED],
    );
    expect(fks).toEqual([]);
  });

  it('includes device_id in every unique index of a distributed table', async () => {
    const indexes: Array<{ table: string; index: string; columns: string[] }> = await db.query(
      `SELECT t.relname AS table, i.relname AS index,
              array_agg(a.attname ORDER BY a.attnum) AS columns
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey)
        WHERE x.indisunique AND t.relname = ANY ($1)
        GROUP BY 1, 2`,
      [DISTRIBUTED],
    );
    expect(indexes.map((i) => i.table).sort()).toEqual([...DISTRIBUTED].sort());
    expect(indexes.filter((i) => !i.columns.includes('device_id'))).toEqual([]);
  });

  it('names device_id in every statement of the device path on a distributed table', () => {
    const statements = DEVICE_PATH.flatMap((file) =>
      [...readFileSync(join(ROOT, file), 'utf8').matchAll(/`([^`]*)`/g)]
        .map((m) => m[1])
        .filter((sql) => /\b(SELECT|INSERT|UPDATE|DELETE)\b/.test(sql))
        .filter((sql) => DISTRIBUTED.some((t) => new RegExp(`\\b${t}\\b(?!_)`).test(sql)))
        .map((sql) => ({ file, sql: sql.replace(/\s+/g, ' ').trim() })),
    );
    expect(statements.length).toBeGreaterThan(8);
    // A WHERE built at run time starts from `device_id = $1` in its own line of code.
    const missing = statements.filter(
      (s) => !/device_id/.test(s.sql) && !/\$\{where\.join/.test(s.sql),
    );
    expect(missing).toEqual([]);
    const telemetry = readFileSync(join(ROOT, DEVICE_PATH[0]), 'utf8');
    for (const m of telemetry.matchAll(/const where = \[([^\]]*)\];\n[\s\S]*?FROM (\w+)/g))
      if (DISTRIBUTED.includes(m[2])) expect(m[1]).toContain('device_id = $1');
  });
});
