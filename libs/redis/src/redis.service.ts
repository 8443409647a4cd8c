import { withDeadline } from '@app/common';
import { AppConfig } from '@app/config';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { RedisOptions } from 'ioredis';
import {
  createRedisClient,
  failFastOnceReady,
  parseRedisUrl,
  RedisClient,
  RedisTarget,
  scanKeys,
} from './redis-target';

/**
 * Owns this process's Redis connections and the key namespace. Every key and channel we
 * write goes through {@link key}, so test runs and several deployments can share one
 * Redis without stepping on each other. `REDIS_URL` names one Redis or a Redis Cluster
 * ({@link cluster}); every key pattern and its hash tag is declared in `key-space.ts`.
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  private readonly connections = new Set<RedisClient>();
  readonly prefix: string;
  private readonly target: RedisTarget;
  /** For short commands. Fails fast when Redis is away instead of queueing forever. */
  readonly client: RedisClient;

  constructor(config: ConfigService<AppConfig, true>) {
    const redis = config.get('redis', { infer: true });
    this.prefix = redis.prefix;
    this.target = parseRedisUrl(redis.url);
    this.client = this.connect('command');
  }

  /** A Redis Cluster: keys a script or transaction uses together must share a hash tag. */
  get cluster(): boolean {
    return this.target.cluster;
  }

  key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  /** The keys matching `match`, a batch at a time, on every node of a cluster ({@link scanKeys}). */
  scan(match: string): ReturnType<typeof scanKeys> {
    return scanKeys(this.client, match);
  }

  /** A separate connection (subscribers and blocking commands need their own). */
  connect(role: string, options: RedisOptions = {}): RedisClient {
    const connection = createRedisClient(this.target, {
      connectionName: `telemetry-${role}`,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectTimeout: 2000,
      // Commands time out after 2 s, but the connection would wait on: drop it instead.
      socketTimeout: 10000,
      // Reconnect forever with a capped delay: Redis coming back must heal us by itself.
      retryStrategy: (times) => Math.min(times * 200, 2000),
      ...options,
    });
    // Once connected, fails fast while Redis is away (an explicit offline queue stays).
    if (options.enableOfflineQueue === undefined) failFastOnceReady(connection);
    connection.on('error', (err: Error) => {
      this.logger.warn({ role, err: err.message }, 'redis connection error');
    });
    this.connections.add(connection);
    connection.once('end', () => this.connections.delete(connection));
    return connection;
  }

  /** PING with a deadline: for readiness checks. */
  async ping(timeoutMs = 1000): Promise<void> {
    await withDeadline(this.client.ping(), timeoutMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.connections].map((c) => c.quit().catch(() => c.disconnect())));
  }
}
