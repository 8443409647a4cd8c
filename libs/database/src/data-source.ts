import { AppConfig } from '@app/config';
import type { DataSourceOptions } from 'typeorm';
import { migrations } from './migrations';

export const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * The one DataSource definition shared by the api, the worker and the migration CLI.
 * `synchronize` is never on: the schema is whatever the migrations say.
 */
export type DatabaseSettings = Pick<AppConfig['database'], 'url' | 'poolSize'> & {
  /** Cancels a statement after this (default 60 s). */
  statementTimeoutMs?: number;
};

export function buildDataSourceOptions(
  database: DatabaseSettings,
  applicationName: string,
): DataSourceOptions {
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
      // A stuck query must not hold a pooled connection (and its locks) forever.
      statement_timeout: database.statementTimeoutMs ?? 60000,
      idle_in_transaction_session_timeout: 60000,
    },
  };
}
