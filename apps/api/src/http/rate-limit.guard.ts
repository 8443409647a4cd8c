import { AppError } from '@app/common';
import { AppConfig } from '@app/config';
import { RedisService } from '@app/redis';
import { ApiKeyAuthService } from '@app/tenancy';
import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerStorage, ThrottlerStorage } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { AdminToken } from '../auth/admin-token';
import { AUTH_METADATA, AuthRequirement } from '../auth/auth.decorators';

const WINDOW_MS = 60000;

/**
 * Rate limits shared by every api replica (counters in Redis through @nestjs/throttler's
 * storage). Buckets: per valid API key, ingest and other routes apart; per admin token;
 * and per client IP for everyone else, so random invalid keys all land in their IP's one
 * bucket. Runs before authentication and before the request body is read, and classifies
 * without bcrypt: a key counts in its own buckets only once this replica has verified it
 * (ApiKeyAuthService.cachedPrincipal). Any other key counts in its IP's bucket, and only
 * while that is under its limit does AuthGuard pay the bcrypt of verifying it; otherwise
 * a known prefix with fresh secrets would buy a bcrypt per request past the limit. So a
 * valid key's first request on a replica (and the first after its cache entry expires)
 * counts against its IP. Public routes (health, metrics, docs) are not limited. If Redis
 * is unreachable the limit is not enforced: rate limiting must not take the api down
 * with it.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly logger = new Logger(RateLimitGuard.name);
  private readonly limits: AppConfig['rateLimit'];

  constructor(
    private readonly reflector: Reflector,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly keys: ApiKeyAuthService,
    private readonly admin: AdminToken,
    private readonly redis: RedisService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.limits = config.get('rateLimit', { infer: true });
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const requirement = this.reflector.getAllAndOverride<AuthRequirement | undefined>(
      AUTH_METADATA,
      [context.getHandler(), context.getClass()],
    );
    if (requirement?.kind === 'public') return true;
    const req = context.switchToHttp().getRequest<Request>();
    const res = context.switchToHttp().getResponse<Response>();
    const { bucket, limit } = this.classify(req, requirement);

    let record;
    try {
      record = await this.storage.increment(
        this.redis.key('ratelimit', bucket),
        WINDOW_MS,
        limit,
        WINDOW_MS,
        'm',
      );
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'rate limit storage unavailable; not limiting',
      );
      return true;
    }
    const resetSeconds = Math.ceil(
      (record.isBlocked ? record.timeToBlockExpire : record.timeToExpire) / 1000,
    );
    res.setHeader('RateLimit-Limit', String(limit));
    res.setHeader('RateLimit-Remaining', String(Math.max(0, limit - record.totalHits)));
    res.setHeader('RateLimit-Reset', String(resetSeconds));
    if (record.isBlocked) {
      throw new AppError(
        'rate_limited',
        `rate limit of ${limit} requests per minute exceeded`,
        undefined,
        resetSeconds,
      );
    }
    return true;
  }

  private classify(
    req: Request,
    requirement: AuthRequirement | undefined,
  ): { bucket: string; limit: number } {
    if (requirement?.kind === 'api_key') {
      const principal = this.keys.cachedPrincipal(req.headers['x-api-key']);
      if (principal) {
        return requirement.scope === 'ingest'
          ? { bucket: `key:${principal.keyId}:ingest`, limit: this.limits.ingestPerMinute }
          : { bucket: `key:${principal.keyId}:api`, limit: this.limits.apiPerMinute };
      }
    } else if (requirement?.kind === 'admin' && this.admin.matches(req.headers.authorization)) {
      return { bucket: 'admin', limit: this.limits.apiPerMinute };
    }
    return { bucket: `ip:${req.ip ?? 'unknown'}`, limit: this.limits.anonPerMinute };
  }
}
