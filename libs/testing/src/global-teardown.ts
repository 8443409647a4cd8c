import { withDeadline } from '@app/common';
import { quoteIdent } from '@app/database';
import { createRedisClient, parseRedisUrl, scanKeys } from '@app/redis';
import { Client } from 'pg';
import { withDatabase } from './global-setup';
import { assertTestDatabase, testRunEnv } from './test-env';

/** Drops this run's database and deletes its Redis keys. */
export default async function globalTeardown(): Promise<void> {
  const run = testRunEnv();
  assertTestDatabase(run.databaseUrl);
  const name = new URL(run.databaseUrl).pathname.slice(1);
  const admin = new Client({ connectionString: withDatabase(run.databaseUrl, 'postgres') });
  await admin.connect();
  try {
    // The run's database and any a suite made beside it (isolatedRun) and left behind.
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '_')`,
      [name],
    );
    for (const { datname } of rows)
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(datname)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }

  const redis = createRedisClient(parseRedisUrl(run.redisUrl), { maxRetriesPerRequest: 1 });
  try {
    if (redis.status !== 'ready')
      await withDeadline(new Promise((resolve) => redis.once('ready', resolve)), 10000);
    // Each node of a cluster holds some keys; one UNLINK per key (they span slots).
    for await (const { node, keys } of scanKeys(redis, `*${run.redisPrefix}:*`))
      await Promise.all(keys.map((k) => node.unlink(k)));
  } finally {
    redis.disconnect();
  }

  const { stopContainers } = await import('./containers');
  await stopContainers();
}
