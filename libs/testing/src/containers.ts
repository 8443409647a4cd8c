/**
 * Throw-away PostgreSQL and Redis for machines with a Docker engine (TESTCONTAINERS=1).
 * Loaded lazily so runs against local servers never load testcontainers.
 */
interface Stoppable {
  stop(): Promise<unknown>;
}
const started: Stoppable[] = [];
const globalStore = globalThis as { __telemetryContainers?: Stoppable[] };

export async function startContainers(): Promise<{ serverUrl: string; redisUrl: string }> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const { RedisContainer } = await import('@testcontainers/redis');
  const [pg, redis] = await Promise.all([
    new PostgreSqlContainer('postgres:15-alpine')
      .withUsername('postgres')
      .withPassword('postgres')
      .start(),
    new RedisContainer('redis:7-alpine').start(),
  ]);
  started.push(pg, redis);
  globalStore.__telemetryContainers = started;
  return { serverUrl: pg.getConnectionUri(), redisUrl: redis.getConnectionUrl() };
}

export async function stopContainers(): Promise<void> {
  const containers = globalStore.__telemetryContainers ?? [];
  await Promise.all(containers.map((c) => c.stop()));
  globalStore.__telemetryContainers = [];
}
