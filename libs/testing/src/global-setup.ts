import { readEnv, writeEnv } from '@app/config';
import { quoteIdent, runMigrations } from '@app/database';
import { Client } from 'pg';
import { assertTestDatabase } from './test-env';

/**
 * Creates this run's database (named `telemetry_test_<time>_<pid>`, so two runs on one
 * machine never collide), migrates it once, and picks a Redis key prefix of its own.
 * With TESTCONTAINERS=1 (a machine with a Docker engine) it first starts throw-away
 * PostgreSQL and Redis containers; otherwise DATABASE_URL / REDIS_URL name the servers.
 */
export default async function globalSetup(): Promise<void> {
  const env = readEnv({}, '/nonexistent');
  let serverUrl = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  let redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';

  if (env.TESTCONTAINERS === '1') {
    const { startContainers } = await import('./containers');
    ({ serverUrl, redisUrl } = await startContainers());
  }

  const runId = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${process.pid}`;
  const databaseUrl = withDatabase(serverUrl, `telemetry_test_${runId}`);
  assertTestDatabase(databaseUrl);

  const admin = new Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(new URL(databaseUrl).pathname.slice(1))}`);
  } finally {
    await admin.end();
  }
  await runMigrations({ url: databaseUrl, poolSize: 2 });

  writeEnv({
    TEST_DATABASE_URL: databaseUrl,
    TEST_REDIS_URL: redisUrl,
    TEST_REDIS_PREFIX: `test-${runId}`,
  });
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
