import { AppConfig } from '@app/config';
import { RedisService } from '@app/redis';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';

/**
 * KEYS[1]: the project's in-flight set (token → lease end, ms). ARGV: limit, token,
 * leaseMs → 1 when a slot was taken. Redis' clock: workers' clocks may disagree.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

type SlotsRedis = Redis & {
  deliverySlotTake(key: string, limit: number, token: string, leaseMs: number): Promise<number>;
};

/**
 * A project's share of webhook delivery: at most WEBHOOK_PROJECT_CONCURRENCY of its
 * deliveries in flight at once, across every worker, so a tenant whose endpoints are slow
 * (10 s timeouts) holds that many delivery slots and never starves everyone else's. A
 * slot is a member of a Redis sorted set scored by its lease end: a worker that dies
 * holding one frees it when the lease ends.
 */
/**
 * How long a sender holds a delivery (its claim on the row, its project slot): longer
 * than an attempt can take, so a live sender never loses either.
 */
export const attemptLeaseMs = (timeoutMs: number): number => timeoutMs + 30000;

@Injectable()
export class DeliverySlots {
  private readonly redis: SlotsRedis;
  private readonly limit: number;
  private readonly leaseMs: number;

  constructor(
    private readonly redisService: RedisService,
    config: ConfigService<AppConfig, true>,
  ) {
    const webhooks = config.get('webhooks', { infer: true });
    this.limit = webhooks.projectConcurrency;
    this.leaseMs = attemptLeaseMs(webhooks.timeoutMs);
    const client = redisService.client;
    if (!('deliverySlotTake' in client))
      client.defineCommand('deliverySlotTake', { numberOfKeys: 1, lua: TAKE });
    this.redis = client as SlotsRedis;
  }

  key(projectId: string): string {
    return this.redisService.key('webhooks', `{${projectId}}`, 'in-flight');
  }

  /** A slot's token, or null when the project has every slot in use. */
  async take(projectId: string): Promise<string | null> {
    const token = randomUUID();
    const taken = await this.redis.deliverySlotTake(
      this.key(projectId),
      this.limit,
      token,
      this.leaseMs,
    );
    return Number(taken) === 1 ? token : null;
  }

  async release(projectId: string, token: string): Promise<void> {
    await this.redis.zrem(this.key(projectId), token);
  }
}
