import { AppConfig, AppConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { AppLoggerModule, ObservabilityModule } from '@app/observability';
import { QueueModule } from '@app/queue';
import { RedisModule, RedisService } from '@app/redis';
import { AlertsModule } from '@app/alerts';
import { RulesModule } from '@app/rules';
import { TelemetryModule } from '@app/telemetry';
import { TenancyModule } from '@app/tenancy';
import { WebhooksModule } from '@app/webhooks';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type Redis from 'ioredis';
import { AdminToken } from './auth/admin-token';
import { RateLimitGuard } from './http/rate-limit.guard';
import { AuthGuard } from './auth/auth.guard';
import { HealthController } from './health/health.controller';
import { RootController } from './root/root.controller';
import { TelemetryController } from './telemetry/telemetry.controller';
import { RejectionsController } from './telemetry/rejections.controller';
import { DeviceMetricsController } from './telemetry/device-metrics.controller';
import { RulesController } from './rules/rules.controller';
import { SilencesController } from './alerts/silences.controller';
import { AlertsController } from './alerts/alerts.controller';
import { WebhooksController } from './webhooks/webhooks.controller';
import { WebhookDeliveriesController } from './webhooks/webhook-deliveries.controller';
import { DevicesController } from './tenancy/devices.controller';
import { OrgsController } from './tenancy/orgs.controller';
import { ProjectsController } from './tenancy/projects.controller';
import { ApiKeysController } from './tenancy/api-keys.controller';

/** The HTTP process: controllers and guards over the feature libs' services. */
@Module({})
export class ApiModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        AppConfigModule.forRoot(config),
        AppLoggerModule,
        DatabaseModule.forRoot('telemetry-api', 'api'),
        RedisModule,
        QueueModule,
        ObservabilityModule,
        TenancyModule,
        TelemetryModule,
        RulesModule,
        AlertsModule,
        WebhooksModule,
        ThrottlerModule.forRootAsync({
          inject: [RedisService],
          // Counters live in Redis so every api replica shares them (RateLimitGuard).
          useFactory: (redis: RedisService) => ({
            throttlers: [{ ttl: 60000, limit: 1 }],
            // Either overload: one Redis or a cluster (its keys are hash-tagged per bucket).
            storage: new ThrottlerStorageRedisService(redis.connect('ratelimit') as Redis),
          }),
        }),
      ],
      controllers: [
        RootController,
        HealthController,
        OrgsController,
        ProjectsController,
        ApiKeysController,
        DevicesController,
        TelemetryController,
        RejectionsController,
        DeviceMetricsController,
        RulesController,
        AlertsController,
        SilencesController,
        WebhooksController,
        WebhookDeliveriesController,
      ],
      providers: [
        AdminToken,
        // Guards run in this order: count the request, then authenticate it.
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_GUARD, useClass: AuthGuard },
      ],
    };
  }
}
