import type { AppConfig } from '@app/config';
import { createRedisClient, parseRedisUrl, RedisNode } from '@app/redis';
import { createIORedisClient, RedisConnection, type RedisOptions } from 'bullmq';
import type { QueueName } from './queue.constants';

/**
 * A connection waiting for Redis' answer this long is dropped and made again: a network
 * partition would otherwise leave it waiting on the kernel's TCP retransmissions for
 * ~15 minutes. Only armed while commands are pending; longer than BullMQ's longest
 * blocking wait (10 s).
 */
export const REDIS_SOCKET_TIMEOUT_MS = 30000;

/** BullMQ connection options; `clusterNodes` (ours) makes the connection a cluster client. */
export type QueueConnectionOptions = RedisOptions & { clusterNodes?: RedisNode[] };

/**
 * ioredis options from `REDIS_URL` (BullMQ wants options, not a URL). For a Redis
 * Cluster they carry the seed nodes, and BullMQ's client factory (below) builds a cluster
 * client from them: BullMQ then owns every connection it makes, its workers' blocking
 * ones included, as it does for a single Redis.
 */
export function redisOptionsFromUrl(url: string): QueueConnectionOptions {
  const target = parseRedisUrl(url);
  const { username, password, db, tls } = target.node;
  return {
    ...target.nodes[0],
    username,
    password,
    db,
    tls,
    socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
    ...(target.cluster ? { clusterNodes: target.nodes } : {}),
  };
}

// BullMQ builds every connection through this factory: from our options (a cluster's
// carry its seed nodes), or from a `url` given directly.
RedisConnection.clientFactory = (opts) => {
  const { clusterNodes, url, ...options } = opts as QueueConnectionOptions & { url?: string };
  // BullMQ adds a default host and port to the options: the URL's win over them.
  if (url) return RedisConnection.clientFactory!({ ...options, ...redisOptionsFromUrl(url) });
  const host = { host: options.host ?? '127.0.0.1', port: options.port ?? 6379 };
  const target = clusterNodes
    ? { cluster: true, nodes: clusterNodes, node: {} }
    : { cluster: false, nodes: [host], node: {} };
  return createIORedisClient(createRedisClient(target, options));
};

/**
 * The key prefix of `queue`'s BullMQ keys. On a cluster it ends in the queue's hash tag,
 * so all of a queue's keys share a slot (BullMQ's scripts use several at once) and the
 * queues spread over the shards; a single Redis keeps the names earlier versions wrote.
 * Declared in libs/redis/src/key-space.ts.
 */
export function queuePrefix(redis: AppConfig['redis'], queue: QueueName | string): string {
  const base = `${redis.prefix}:bull`;
  return parseRedisUrl(redis.url).cluster ? `${base}:{${queue}}` : base;
}
