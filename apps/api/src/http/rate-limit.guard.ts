import { AppError } from '@app/common';
import { AppConfig } from '@app/config';
import { failOpenWithin, RedisService } from '@app/redis';
import { ApiKeyAuthService, ApiKeyPrincipal, parseApiKey } from '@app/tenancy';
import type Redis from 'ioredis';
import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AdminToken } from '../auth/admin-token';
import { AUTH_METADATA, AuthRequirement } from '../auth/auth.types';

const WINDOW_MS = 60000;
/**
 * The per-IP bucket: a fixed one-minute window. KEYS[1] the counter; ARGV[1] the window
 * (ms) → {hits, ms left}. Our own rather than the throttler's, because a hit must be
 * given back (see {@link RateLimitGuard}).
 */
const TAKE = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`;
const GIVE_BACK = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then return redis.call('DECR', KEYS[1]) end
return 0
`;

type LimiterRedis = Redis & {
  ipBucketTake(key: string, windowMs: number): Promise<[number, number]>;
  ipBucketGiveBack(key: string): Promise<number>;
};

interface Count {
  limit: number;
  hits: number;
  resetSeconds: number;
  blocked: boolean;
}

/**
 * Rate limits shared by every api replica (counters in Redis). Buckets: per valid API
 * key, ingest and other routes apart; per admin token; and per client IP for everyone
 * without a valid credential, so random invalid keys all land in their IP's one bucket.
 * Runs before authentication and before the request body is read, and never runs bcrypt
 * (~90 ms of CPU) for a request it has not counted:
 *
 * - a key this replica verified and still caches counts in its own bucket;
 * - any other well-formed key counts in its IP's bucket first; past that limit it is a
 *   429 without bcrypt. Only under it is the key verified (the one bcrypt, which
 *   AuthGuard then finds cached), and a key that verifies gives the IP's hit back and
 *   counts in its own bucket: a valid credential never uses up its IP's allowance.
 *
 * So a known prefix with fresh secrets buys at most RATE_LIMIT_ANON_PER_MINUTE bcrypts a
 * minute per IP. Public routes (health, metrics, docs) are not limited. If Redis is
 * unreachable the limit is not enforced: rate limiting must not take the api down with it.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly logger = new Logger(RateLimitGuard.name);
  private readonly limits: AppConfig['rateLimit'];
  private readonly client: LimiterRedis;
  private readonly local = new LocalWindows(WINDOW_MS, 100000);

  constructor(
    private readonly reflector: Reflector,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly keys: ApiKeyAuthService,
    private readonly admin: AdminToken,
    private readonly redis: RedisService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.limits = config.get('rateLimit', { infer: true });
    const client = redis.client;
    if (!('ipBucketTake' in client)) {
      client.defineCommand('ipBucketTake', { numberOfKeys: 1, lua: TAKE });
      client.defineCommand('ipBucketGiveBack', { numberOfKeys: 1, lua: GIVE_BACK });
    }
    this.client = client as LimiterRedis;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const requirement = this.reflector.getAllAndOverride<AuthRequirement | undefined>(
      AUTH_METADATA,
      [context.getHandler(), context.getClass()],
    );
    if (requirement?.kind === 'public') return true;
    const req = context.switchToHttp().getRequest<Request>();
    const res = context.switchToHttp().getResponse<Response>();
    try {
      const count = await this.count(req, requirement);
      if (count) this.enforce(res, count);
    } catch (err) {
      if (err instanceof AppError) throw err;
      this.logger.warn(
        { err: (err as Error).message },
        'rate limit storage unavailable; not limiting',
      );
    }
    return true;
  }

  /** Counts the request in its bucket; null when nothing is left to enforce. */
  private async count(
    req: Request,
    requirement: AuthRequirement | undefined,
  ): Promise<Count | null> {
    if (requirement?.kind === 'api_key') {
      const presented = req.headers['x-api-key'];
      const cached = this.keys.cachedPrincipal(presented);
      if (cached) return this.countKey(cached, requirement.scope);
      if (parseApiKey(presented)) {
        const ip = await this.countIp(req);
        if (ip.blocked) return ip;
        const principal = await this.keys.verify(presented);
        if (!principal) return ip; // AuthGuard answers 401; the hit stays counted
        await this.client.ipBucketGiveBack(this.ipKey(req)).catch(() => undefined);
        this.local.giveBack(req.ip ?? 'unknown');
        return this.countKey(principal, requirement.scope);
      }
    } else if (requirement?.kind === 'admin' && this.admin.matches(req.headers.authorization)) {
      return this.countThrottled('admin', this.limits.apiPerMinute);
    }
    return this.countIp(req);
  }

  private countKey(principal: ApiKeyPrincipal, scope: string): Promise<Count> {
    return scope === 'ingest'
      ? this.countThrottled(`key:${principal.keyId}:ingest`, this.limits.ingestPerMinute)
      : this.countThrottled(`key:${principal.keyId}:api`, this.limits.apiPerMinute);
  }

  private async countThrottled(bucket: string, limit: number): Promise<Count> {
    const record = await failOpenWithin(
      this.storage.increment(this.redis.key('ratelimit', bucket), WINDOW_MS, limit, WINDOW_MS, 'm'),
    );
    return {
      limit,
      hits: record.totalHits,
      // The storage answers in seconds already.
      resetSeconds: Math.max(1, record.isBlocked ? record.timeToBlockExpire : record.timeToExpire),
      blocked: record.isBlocked,
    };
  }

  private ipKey(req: Request): string {
    return this.redis.key('ratelimit', 'ip', req.ip ?? 'unknown');
  }

  private async countIp(req: Request): Promise<Count> {
    const limit = this.limits.anonPerMinute;
    let hits: number;
    let ttl: number;
    try {
      [hits, ttl] = (
        await failOpenWithin(this.client.ipBucketTake(this.ipKey(req), WINDOW_MS))
      ).map(Number);
    } catch (err) {
      // Redis away: this bucket still counts, in this process, because it is what keeps
      // made-up keys from buying a bcrypt each. (Key buckets are simply not enforced.)
      this.logger.warn(
        { err: (err as Error).message },
        'rate limit storage unavailable; counting client IPs in memory',
      );
      [hits, ttl] = this.local.take(req.ip ?? 'unknown');
    }
    return {
      limit,
      hits,
      resetSeconds: Math.max(1, Math.ceil(ttl / 1000)),
      blocked: hits > limit,
    };
  }

  private enforce(res: Response, count: Count): void {
    res.setHeader('RateLimit-Limit', String(count.limit));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, count.limit - count.hits)));
    res.setHeader('RateLimit-Reset', String(count.resetSeconds));
    if (count.blocked) {
      throw new AppError(
        'rate_limited',
        `rate limit of ${count.limit} requests per minute exceeded`,
        undefined,
        count.resetSeconds,
      );
    }
  }
}

/**
 * Fixed one-minute windows per client IP in this process's memory: the IP bucket while
 * Redis is unreachable. Bounded: past `maxEntries` the oldest windows are forgotten.
 */
class LocalWindows {
  private readonly windows = new Map<string, { hits: number; endsAt: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  /** [hits in the window, ms left]. */
  take(key: string, now = Date.now()): [number, number] {
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      if (this.windows.size >= this.maxEntries)
        this.windows.delete(this.windows.keys().next().value as string);
      window = { hits: 0, endsAt: now + this.windowMs };
      this.windows.delete(key);
      this.windows.set(key, window);
    }
    window.hits++;
    return [window.hits, window.endsAt - now];
  }

  giveBack(key: string): void {
    const window = this.windows.get(key);
    if (window && window.hits > 0) window.hits--;
  }
}
