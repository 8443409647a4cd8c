import type { RedisOptions } from 'bullmq';

/**
 * A connection waiting for Redis' answer this long is dropped and made again: a network
 * partition would otherwise leave it waiting on the kernel's TCP retransmissions for
 * ~15 minutes. Only armed while commands are pending; longer than BullMQ's longest
 * blocking wait (10 s).
 */
export const REDIS_SOCKET_TIMEOUT_MS = 30000;

/** ioredis options from a `redis://` / `rediss://` URL (BullMQ wants options, not a URL). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '');
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: db ? Number(db) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    socketTimeout: REDIS_SOCKET_TIMEOUT_MS,
  };
}
