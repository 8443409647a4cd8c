import type { MigrationInterface, QueryRunner } from 'typeorm';

const DAY_MS = 86400000;
/**
 * The first partition boundary is the UTC midnight at least this many days ahead (the
 * maintenance duty's 7-day window ahead, and the rest of today): ingest needs nothing
 * more until the duty runs, and the scan of step 2 has that long before readings of the
 * present reach the boundary.
 */
const FIRST_BOUNDARY_DAYS = 8;
const CONSTRAINT = 'telemetry_partition_bound';
/** `telemetry`'s columns and key (as migration 1764260000000 made them), both ways. */
const COLUMNS = `device_id uuid NOT NULL, ts timestamptz(3) NOT NULL, data jsonb NOT NULL,
  PRIMARY KEY (device_id, ts)`;

/**
 * `telemetry` becomes a table partitioned by range on `ts` (docs/operations.md, "Partitions
 * and retention"), online: ingest and reads go on while it runs, and no row moves.
 *
 * The table as it is becomes the partition of every time before a boundary,
 * `telemetry_before_<yyyymmdd>`, FROM (MINVALUE); the worker's maintenance duty creates
 * the partitions from the boundary on, at the configured width. Attaching a table as a
 * partition scans it under an ACCESS EXCLUSIVE lock, unless a validated CHECK constraint
 * already proves the bound, hence three steps, each its own transaction:
 *
 * 1. `CHECK (ts < boundary) NOT VALID`: new rows are checked, old ones are not read. A
 *    table holding readings at or past the boundary (device clocks years ahead, which the
 *    api now refuses) is not converted: the migration fails naming the newest one, before
 *    changing anything; move or delete them and run it again (docs/operations.md).
 * 2. `VALIDATE CONSTRAINT`: the one full scan, under a SHARE UPDATE EXCLUSIVE lock, which
 *    inserts and reads don't wait for. It is bounded by the statement timeout
 *    (`DATABASE_STATEMENT_TIMEOUT_MS` of `migrate`): raise it for a large table.
 * 3. Rename the table and its key, create the partitioned `telemetry` with the same columns
 *    and key, attach the old table (no scan: the CHECK proves the bound; its key's index
 *    becomes the partition's part of the new one), drop the CHECK.
 *
 * Steps 1 and 3 take an ACCESS EXCLUSIVE lock for an instant; they give up after 5 s
 * rather than hold ingest behind a long transaction (run the migration again). A run cut
 * short anywhere starts again from step 1 (step 3 is one transaction).
 */
export class TelemetryPartitions1764330000000 implements MigrationInterface {
  name = 'TelemetryPartitions1764330000000';
  /** Step 2 must not run inside the transactions that take the exclusive locks. */
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    const [{ kind }] = (await q.query(
      `SELECT relkind AS kind FROM pg_class WHERE oid = 'telemetry'::regclass`,
    )) as Array<{ kind: string }>;
    if (kind === 'p') return; // converted by a run that stopped before recording itself

    const boundary = await this.firstBoundary(q);
    const bound = boundary.toISOString();
    const history = `telemetry_before_${bound.slice(0, 10).replace(/-/g, '')}`;

    await this.inTransaction(q, async () => {
      await q.query(`SET LOCAL lock_timeout = '5s'`);
      await q.query(
        `ALTER TABLE telemetry DROP CONSTRAINT IF EXISTS ${CONSTRAINT},
           ADD CONSTRAINT ${CONSTRAINT} CHECK (ts < '${bound}') NOT VALID`,
      );
    });
    try {
      await q.query(`ALTER TABLE telemetry VALIDATE CONSTRAINT ${CONSTRAINT}`);
      await this.convert(q, bound, history);
    } catch (err) {
      // Left behind, the CHECK would refuse the readings of the present a week from now.
      await q
        .query(`ALTER TABLE telemetry DROP CONSTRAINT IF EXISTS ${CONSTRAINT}`)
        .catch(() => undefined);
      throw err;
    }
  }

  /** Step 3: the partitioned `telemetry`, the old table attached as its past. */
  private async convert(q: QueryRunner, bound: string, history: string): Promise<void> {
    await this.inTransaction(q, async () => {
      await q.query(`SET LOCAL lock_timeout = '5s'`);
      await q.query(`ALTER TABLE telemetry RENAME TO ${history}`);
      await q.query(`ALTER TABLE ${history} RENAME CONSTRAINT telemetry_pkey TO ${history}_pkey`);
      await q.query(`CREATE TABLE telemetry (${COLUMNS}) PARTITION BY RANGE (ts)`);
      await q.query(
        `ALTER TABLE telemetry ATTACH PARTITION ${history} FOR VALUES FROM (MINVALUE) TO ('${bound}')`,
      );
      await q.query(`ALTER TABLE ${history} DROP CONSTRAINT ${CONSTRAINT}`);
    });
  }

  /** Back to one table, offline: every row is copied while ingest and reads wait. */
  async down(q: QueryRunner): Promise<void> {
    await this.inTransaction(q, async () => {
      await q.query(`ALTER TABLE telemetry RENAME TO telemetry_partitioned`);
      await q.query(
        `ALTER TABLE telemetry_partitioned RENAME CONSTRAINT telemetry_pkey TO telemetry_partitioned_pkey`,
      );
      await q.query(`CREATE TABLE telemetry (${COLUMNS})`);
      await q.query(`INSERT INTO telemetry SELECT device_id, ts, data FROM telemetry_partitioned`);
      await q.query(`DROP TABLE telemetry_partitioned`);
    });
  }

  /**
   * The UTC midnight {@link FIRST_BOUNDARY_DAYS} after today, past every stored reading.
   * The newest reading is found with two index probes per device (the device's first key,
   * then its newest `ts`), not a scan of the table.
   */
  private async firstBoundary(q: QueryRunner): Promise<Date> {
    const [{ newest }] = (await q.query(`
      WITH RECURSIVE seen AS (
        (SELECT device_id FROM telemetry ORDER BY device_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.device_id FROM telemetry t
                 WHERE t.device_id > seen.device_id ORDER BY t.device_id LIMIT 1)
          FROM seen WHERE seen.device_id IS NOT NULL)
      SELECT max((SELECT max(t.ts) FROM telemetry t WHERE t.device_id = seen.device_id)) AS newest
        FROM seen WHERE seen.device_id IS NOT NULL`)) as Array<{ newest: Date | null }>;
    const boundary = new Date(
      Math.floor(Date.now() / DAY_MS) * DAY_MS + FIRST_BOUNDARY_DAYS * DAY_MS,
    );
    if (newest && newest >= boundary)
      throw new Error(
        `telemetry holds readings at or after ${boundary.toISOString()} (the newest at ${newest.toISOString()}): ` +
          'they cannot stay in the partition of the past. Move or delete them (docs/operations.md, ' +
          '"Partitions and retention"), then migrate again',
      );
    return boundary;
  }

  private async inTransaction(q: QueryRunner, fn: () => Promise<void>): Promise<void> {
    await q.startTransaction();
    try {
      await fn();
      await q.commitTransaction();
    } catch (err) {
      await q.rollbackTransaction();
      throw err;
    }
  }
}
