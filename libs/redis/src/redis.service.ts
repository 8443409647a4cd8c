import { withDeadline } from '@app/common';
import { AppConfig } from '@app/config';
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import Redis, { RedisOptions } from 'ioredis';

/**
 * Owns this process's Redis connections and the key namespace. Every key and channel we
 * write goes through {@link key}, so test runs and several deployments can share one
 * Redis without stepping on each other.
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  private readonly connections = new Set<Redis>();
  readonly prefix: string;
  private readonly url: string;
  /** For short commands. Fails fast when Redis is away instead of queueing forever. */
  readonly client: Redis;

  constructor(config: ConfigService<AppConfig, true>) {
    const redis = config.get('redis', { infer: true });
    this.prefix = redis.prefix;
    this.url = redis.url;
    this.client = this.connect('command');
  }

  key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  /** A separate connection (subscribers and blocking commands need their own). */
  connect(role: string, options: RedisOptions = {}): Redis {
    const connection = new Redis(this.url, {
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
