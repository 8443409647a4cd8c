import { AppConfig, AppConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { AppLoggerModule, ObservabilityModule } from '@app/observability';
import { QueueModule } from '@app/queue';
import { RedisModule } from '@app/redis';
import { TelemetryModule } from '@app/telemetry';
import { TenancyModule } from '@app/tenancy';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth/auth.guard';
import { HealthController } from './health/health.controller';
import { TelemetryController } from './telemetry/telemetry.controller';
import { DevicesController } from './tenancy/devices.controller';
import { OrgsController } from './tenancy/orgs.controller';
import { ProjectsController } from './tenancy/projects.controller';

/** The HTTP process: controllers and guards over the feature libs' services. */
@Module({})
export class ApiModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        AppConfigModule.forRoot(config),
        AppLoggerModule,
        DatabaseModule.forRoot('telemetry-api'),
        RedisModule,
        QueueModule,
        ObservabilityModule,
        TenancyModule,
        TelemetryModule,
      ],
      controllers: [
        HealthController,
        OrgsController,
        ProjectsController,
        DevicesController,
        TelemetryController,
      ],
      providers: [{ provide: APP_GUARD, useClass: AuthGuard }],
    };
  }
}
