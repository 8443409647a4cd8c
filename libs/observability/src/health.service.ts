import { RedisService } from '@app/redis';
import { Injectable } from '@nestjs/common';
import {
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';

/** Readiness = PostgreSQL and Redis answer within a second. Shared by api and worker. */
@Injectable()
export class ReadinessService {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicator: HealthIndicatorService,
    private readonly redis: RedisService,
  ) {}

  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('database', { timeout: 1000 }),
      async () => {
        const session = this.indicator.check('redis');
        try {
          await this.redis.ping(1000);
          return session.up();
        } catch (err) {
          return session.down({ message: (err as Error).message });
        }
      },
    ]);
  }
}
