import { EnvSource } from '@app/config';
import { quoteIdent, runMigrations } from '@app/database';
import { Client } from 'pg';
import { withDatabase } from './global-setup';
import { testRunEnv } from './test-env';

export interface IsolatedRun {
  /** Overrides for startApi / startWorker / openQueue: this suite's database and Redis prefix. */
  env: EnvSource;
  drop(): Promise<void>;
}

/**
 * A database (migrated) and a Redis prefix of a suite's own, for suites whose workers must
 * not meet the rest of the run's: e.g. another webhook secret key ring, which would leave
 * rows every other worker fails to read. Named after the run's database, so the global
 * teardown drops it even if the suite never gets to.
 */
export async function isolatedRun(label: string): Promise<IsolatedRun> {
  const run = testRunEnv();
  const url = sideDatabaseUrl(label);
  await runMigrations({ url, poolSize: 2 });
  return {
    env: { DATABASE_URL: url, REDIS_PREFIX: `${run.redisPrefix}:${label}` },
    drop: () => dropDatabase(url),
  };
}

/**
 * The URL of a database beside the run's (`<run database>_<label>`, not created here):
 * the global teardown drops it with the run's.
 */
export function sideDatabaseUrl(label: string): string {
  const run = testRunEnv();
  return withDatabase(run.databaseUrl, `${new URL(run.databaseUrl).pathname.slice(1)}_${label}`);
}

export async function dropDatabase(url: string): Promise<void> {
  const admin = new Client({ connectionString: withDatabase(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(
      `DROP DATABASE IF EXISTS ${quoteIdent(new URL(url).pathname.slice(1))} WITH (FORCE)`,
    );
  } finally {
    await admin.end();
  }
}
