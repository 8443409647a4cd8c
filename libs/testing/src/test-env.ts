import { EnvSource, readEnv } from '@app/config';

/** What the global setup hands to every test file through the environment. */
export interface TestRunEnv {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  adminToken: string;
}

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export function testRunEnv(): TestRunEnv {
  const env = readEnv({}, '/nonexistent');
  const databaseUrl = env.TEST_DATABASE_URL;
  if (!databaseUrl)
    throw new Error('TEST_DATABASE_URL is not set: run tests through jest (global setup)');
  assertTestDatabase(databaseUrl);
  return {
    databaseUrl,
    redisUrl: env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisPrefix: env.TEST_REDIS_PREFIX ?? 'test',
    adminToken: TEST_ADMIN_TOKEN,
  };
}

/** Environment overrides that point an app at this run's database and Redis namespace. */
export function testConfigOverrides(extra: EnvSource = {}): EnvSource {
  const run = testRunEnv();
  return {
    NODE_ENV: 'test',
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    REDIS_PREFIX: run.redisPrefix,
    ADMIN_TOKEN: run.adminToken,
    LOG_LEVEL: 'silent',
    WORKER_PORT: '0',
    DATABASE_POOL_SIZE: '5',
    // Tests share one Redis namespace and one client IP: limits are tested on their own.
    RATE_LIMIT_INGEST_PER_MINUTE: '1000000',
    RATE_LIMIT_API_PER_MINUTE: '1000000',
    RATE_LIMIT_ANON_PER_MINUTE: '1000000',
    // Webhook tests deliver to receivers on 127.0.0.1 and can't wait hours between retries.
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2,0.2',
    WEBHOOK_TIMEOUT_MS: '2000',
    ...extra,
  };
}

/** The harness never touches a database whose name does not say it is for tests. */
export function assertTestDatabase(url: string): void {
  const name = new URL(url).pathname.replace(/^\//, '');
  if (!/test/i.test(name)) {
    throw new Error(`refusing to use database "${name}" for tests: its name must contain "test"`);
  }
}
