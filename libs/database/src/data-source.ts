import { Socket } from 'node:net';
import { AppConfig } from '@app/config';
import type { DataSourceOptions } from 'typeorm';
import { migrations } from './migrations';

export const MIGRATIONS_TABLE = 'schema_migrations';

/** A pooled connection idle this long is closed. */
const IDLE_MS = 10000;

/**
 * The socket of a PostgreSQL connection, dropped when the server sends nothing for
 * `silenceMs`. A network partition (the old primary's address gone dark in a failover)
 * otherwise leaves a query waiting on the kernel's TCP retransmissions for ~15 minutes;
 * dropped, it fails as a lost connection, which the worker waits out and the api answers
 * with a 503. No healthy connection is that silent: the server ends every statement by
 * its statement_timeout, and idle pooled connections close sooner.
 */
function silentSocket(silenceMs: number): Socket {
  const socket = new Socket();
  socket.setTimeout(silenceMs, () =>
    socket.destroy(new Error(`PostgreSQL sent nothing for ${silenceMs} ms: connection dropped`)),
  );
  return socket;
}

/**
 * The one DataSource definition shared by the api, the worker and the migration CLI.
 * `synchronize` is never on: the schema is whatever the migrations say.
 */
export type DatabaseSettings = Pick<AppConfig['database'], 'url' | 'poolSize'> & {
  /** Cancels a statement after this (default 60 s). */
  statementTimeoutMs?: number;
  /** `transaction`: a pooler in transaction mode is in between (default `none`). */
  pooler?: AppConfig['database']['pooler'];
};

export function buildDataSourceOptions(
  database: DatabaseSettings,
  applicationName: string,
): DataSourceOptions {
  const statementTimeoutMs = database.statementTimeoutMs ?? 60000;
  // Longer than any answer can take (the server ends a statement by its timeout) and than
  // a pooled connection stays idle (closed after IDLE_MS).
  const silenceMs = Math.max(statementTimeoutMs + 5000, IDLE_MS + 5000);
  return {
    type: 'postgres',
    url: database.url,
    synchronize: false,
    migrationsRun: false,
    migrations,
    migrationsTableName: MIGRATIONS_TABLE,
    // Query errors reach our own handlers (and the 500 log line with its error id); logging
    // them here too would report every handled unique violation as an error.
    logging: ['warn', 'migration'],
    applicationName,
    extra: {
      max: database.poolSize,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: IDLE_MS,
      // A stuck query must not hold a pooled connection (and its locks) forever. Sent as
      // startup parameters, which a transaction-mode pooler refuses (a session setting
      // would leak to whichever client gets the server connection next): behind one, the
      // database role carries them instead (docs/operations.md, "Behind PgBouncer").
      ...(database.pooler === 'transaction'
        ? {}
        : { statement_timeout: statementTimeoutMs, idle_in_transaction_session_timeout: 60000 }),
      keepAlive: true,
      stream: () => silentSocket(silenceMs),
    },
  };
}
