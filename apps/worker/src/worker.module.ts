import { AppConfig, AppConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { AppLoggerModule, ObservabilityModule } from '@app/observability';
import { QueueModule, QueueWorkerModule } from '@app/queue';
import { AlertsWorkerModule } from '@app/alerts';
import { RedisModule } from '@app/redis';
import { TelemetryWorkerModule } from '@app/telemetry';
import { WebhooksWorkerModule } from '@app/webhooks';
import { DynamicModule, Module } from '@nestjs/common';
import { WorkerHttpServer } from './worker-http.server';

/**
 * The worker process: the feature libs' `XWorkerModule`s (their BullMQ processors) and
 * nothing HTTP but the probe listener. Only this module imports worker modules.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        AppConfigModule.forRoot(config),
        AppLoggerModule,
        DatabaseModule.forRoot('telemetry-worker'),
        RedisModule,
        QueueModule,
        QueueWorkerModule,
        ObservabilityModule,
        TelemetryWorkerModule,
        AlertsWorkerModule,
        WebhooksWorkerModule,
      ],
      providers: [WorkerHttpServer],
    };
  }
}
