import { AlertsWorkerModule } from '@app/alerts';
import { AppConfig, AppConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { AppLoggerModule, ObservabilityModule } from '@app/observability';
import {
  QueueHandlerClass,
  QueueModule,
  QueueName,
  QUEUES,
  queueConsumers,
  QueueWorkerModule,
  redisOptionsFromUrl,
  WorkerTuning,
} from '@app/queue';
import { RedisModule } from '@app/redis';
import { EvaluationService, RulesWorkerModule } from '@app/rules';
import { TelemetryWorkerModule } from '@app/telemetry';
import { WebhooksWorkerModule } from '@app/webhooks';
import { DynamicModule, Module } from '@nestjs/common';
import { WorkerHttpServer } from './worker-http.server';

/**
 * The worker side of each feature lib. Rule evaluation joins each batch's storing
 * transaction when it can ({@link TelemetryWorkerModule.followedBy}); the rest of the time
 * it runs from the `rule-evaluation` queue.
 */
const FEATURES = [
  TelemetryWorkerModule.followedBy(RulesWorkerModule, EvaluationService),
  RulesWorkerModule,
  WebhooksWorkerModule,
];

/** The queue handlers the feature libs bring. */
const HANDLERS: QueueHandlerClass[] = [
  ...TelemetryWorkerModule.handlers,
  ...RulesWorkerModule.handlers,
  ...WebhooksWorkerModule.handlers,
];

/**
 * Each queue's concurrency, lock duration and connection: deliveries have their own
 * concurrency.
 */
export function tuningOf(config: AppConfig, queue: QueueName): WorkerTuning {
  const tuning = {
    concurrency: config.worker.concurrency,
    lockDurationMs: config.worker.lockDurationMs,
    connection: redisOptionsFromUrl(config.redis.url),
  };
  return queue === QUEUES.WEBHOOK_DELIVERY
    ? { ...tuning, concurrency: config.webhooks.concurrency }
    : tuning;
}

/**
 * The worker process: the feature libs' worker modules, one BullMQ consumer per queue
 * around each lib's handler (it fails at start if a queue has none or two), and nothing
 * HTTP but the probe listener. Only this module imports worker modules.
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
        AlertsWorkerModule,
        ...FEATURES,
      ],
      providers: [WorkerHttpServer, ...queueConsumers(HANDLERS, (q) => tuningOf(config, q))],
    };
  }
}
