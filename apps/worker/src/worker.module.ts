import { AlertsWorkerModule, EventFanOutModule } from '@app/alerts';
import { AppConfig, AppConfigModule, WorkerRole, WorkerRoles } from '@app/config';
import { DatabaseModule } from '@app/database';
import { AppLoggerModule, MetricsService, ObservabilityModule } from '@app/observability';
import {
  QueueHandlerClass,
  QueueMetrics,
  QueueModule,
  QueueName,
  QUEUE_OF_ROLE,
  queueConsumers,
  QueueWorkerModule,
  queuePrefix,
  redisOptionsFromUrl,
  WorkerTuning,
} from '@app/queue';
import { RedisModule } from '@app/redis';
import { EvaluationService, RulesWorkerModule } from '@app/rules';
import { TelemetryWorkerModule } from '@app/telemetry';
import { FanOutService, WebhooksWorkerModule } from '@app/webhooks';
import { DynamicModule, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { WorkerHttpServer } from './worker-http.server';

/**
 * The worker side of each feature lib. Rule evaluation joins each batch's storing
 * transaction when it can ({@link TelemetryWorkerModule.followedBy}); the rest of the time
 * it runs from the `rule-evaluation` queue. The events an evaluation writes are fanned out
 * to webhook deliveries in its transaction ({@link EventFanOutModule.by}); the others
 * (the api's acks and resolves, reminders, the offline scan) go through the outbox relay.
 */
const FEATURES = [
  TelemetryWorkerModule.followedBy(RulesWorkerModule, EvaluationService),
  RulesWorkerModule,
  WebhooksWorkerModule,
  EventFanOutModule.by(WebhooksWorkerModule, FanOutService),
];

/** The queue handlers the feature libs bring. */
const HANDLERS: QueueHandlerClass[] = [
  ...TelemetryWorkerModule.handlers,
  ...RulesWorkerModule.handlers,
  ...WebhooksWorkerModule.handlers,
];

/** The queues a process with this configuration consumes. */
export function queuesOf(config: AppConfig): QueueName[] {
  return config.worker.roles.map((role) => QUEUE_OF_ROLE[role]);
}

/** Each queue's concurrency (its role's), lock duration and connection. */
export function tuningOf(config: AppConfig, queue: QueueName): WorkerTuning {
  const role = (Object.keys(QUEUE_OF_ROLE) as WorkerRole[]).find((r) => QUEUE_OF_ROLE[r] === queue);
  return {
    concurrency: role ? config.worker.roleConcurrency[role] : config.worker.concurrency,
    lockDurationMs: config.worker.lockDurationMs,
    connection: redisOptionsFromUrl(config.redis.url),
    prefix: queuePrefix(config.redis, queue),
  };
}

/**
 * The worker process: the feature libs' worker modules, one BullMQ consumer per queue of
 * its roles (WORKER_QUEUES) around each lib's handler (it fails at start if such a queue
 * has none or two), and nothing HTTP but the probe listener. Every role's services are
 * there (an ingest process opens alerts and hands their events on), but a process
 * consumes only its roles' queues and runs only their periodic duties. Only this module
 * imports worker modules.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    const queues = queuesOf(config);
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
      providers: [
        WorkerHttpServer,
        {
          // Which periodic duties run in this process: 1 per duty (docs/operations.md).
          provide: 'WORKER_DUTIES_GAUGE',
          inject: [MetricsService, WorkerRoles],
          useFactory: (metrics: MetricsService, roles: WorkerRoles) =>
            metrics.gauge(
              'worker_duties',
              'periodic duties this worker process runs (1 each), by its roles',
              ['duty'],
              function () {
                for (const duty of roles.duties) this.set({ duty }, 1);
              },
            ),
        },
        {
          provide: QueueMetrics,
          inject: [MetricsService, ConfigService],
          useFactory: (metrics: MetricsService, cfg: ConfigService<AppConfig, true>) =>
            new QueueMetrics(metrics, cfg, queues),
        },
        ...queueConsumers(
          HANDLERS.filter((h) => queues.includes(h.queue)),
          (q) => tuningOf(config, q),
          queues,
        ),
      ],
    };
  }
}
