import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions, DatabaseSettings } from './data-source';

/** Any constant works; it only has to be the same in every process that migrates. */
const MIGRATION_LOCK_KEY = 7_403_112_001;

export interface MigrationResult {
  applied: string[];
  createdDatabase: boolean;
}

/**
 * Applies pending migrations. Safe to run from several processes at once (every replica
 * of a Kubernetes Job, say): an advisory lock serialises them, and the ones that wait find
 * nothing left to do. Creates the database first when it does not exist.
 *
 * The lock is transaction-scoped, held by a transaction of its own that stays open while
 * the migrations run on other connections: so it works through a transaction-mode pooler
 * too (PgBouncer keeps that transaction on one server connection, and a session lock
 * would stay with whichever server connection took it), and ends with its connection if
 * the process dies.
 */
export async function runMigrations(database: DatabaseSettings): Promise<MigrationResult> {
  const createdDatabase = await ensureDatabase(database.url);
  // The lock's own connection: a plain client, not the DataSource's pool, whose sockets are
  // dropped after a silence longer than the statement timeout (this one is silent while
  // the migrations run), with no statement or idle timeout on its transaction.
  const lock = new Client({ connectionString: database.url, keepAlive: true });
  await lock.connect();
  const dataSource = new DataSource(buildDataSourceOptions(database, 'telemetry-migrate'));
  try {
    await takeLock(lock);
    await dataSource.initialize();
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    // A lock lost meanwhile (its connection gone) would have let another run in: say so.
    await lock.query('COMMIT');
    return { applied: applied.map((m) => m.name), createdDatabase };
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await lock.end().catch(() => undefined);
  }
}

/** How often a migration run waiting for another's to finish tries the lock again. */
const LOCK_POLL_MS = 200;

/**
 * Opens a transaction on `lock` holding the migration lock, trying again every
 * {@link LOCK_POLL_MS} rather than waiting in `pg_advisory_xact_lock`: CREATE INDEX
 * CONCURRENTLY waits for the end of every transaction that held a snapshot when it looked,
 * and a run waiting for the lock would then wait on the run holding it until the statement
 * timeout. So each try is a transaction of its own, rolled back when it fails (a waiter
 * holds none between tries), and a simple query (no parameter): an extended-protocol
 * query's unnamed portal keeps its snapshot until the next query, and the holder sends none
 * while the migrations run (it would hold back vacuum meanwhile too).
 */
async function takeLock(lock: Client): Promise<void> {
  for (;;) {
    await lock.query('BEGIN');
    await lock.query('SET LOCAL statement_timeout = 0');
    await lock.query('SET LOCAL idle_in_transaction_session_timeout = 0');
    const { rows } = await lock.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}) AS locked`,
    );
    if (rows[0].locked) return;
    await lock.query('ROLLBACK');
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

/** Creates the database named in `url` when missing; returns whether it did. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) return false;
  const probe = new Client({ connectionString: url });
  try {
    await probe.connect();
    return false;
  } catch (err) {
    // invalid_catalog_name; PgBouncer relays it as a message without the code.
    const missing =
      (err as { code?: string }).code === '3D000' ||
      /^database ".*" does not exist$/.test((err as Error).message);
    if (!missing) throw err;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    return true;
  } catch (err) {
    // Created by a racing process: 42P04 when it committed first, 23505 when both inserted
    // into pg_database at the same moment.
    const code = (err as { code?: string }).code;
    if (code === '42P04' || code === '23505') return false;
    throw err;
  } finally {
    await client.end();
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
