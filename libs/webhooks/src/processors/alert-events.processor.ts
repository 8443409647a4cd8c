import { AppConfig } from '@app/config';
import { DrainingWorkerHost, JobPayloads, OutageService, QUEUES } from '@app/queue';
import { OnWorkerEvent, Processor } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Job } from 'bullmq';
import { DeliveryService } from '../delivery.service';

type AlertEventJob = JobPayloads[typeof QUEUES.ALERT_EVENTS]['alert-event'];

/** Alert events from the outbox → one delivery per matching webhook. */
@Processor(QUEUES.ALERT_EVENTS, { autorun: false })
export class AlertEventsProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(AlertEventsProcessor.name);

  constructor(
    private readonly deliveries: DeliveryService,
    private readonly config: ConfigService<AppConfig, true>,
    outage: OutageService,
  ) {
    super(outage);
  }

  onApplicationBootstrap(): void {
    this.start(this.config.get('worker', { infer: true }));
  }

  protected async handle(job: Job<AlertEventJob>): Promise<unknown> {
    switch (job.name) {
      case 'alert-event':
        return { deliveries: await this.deliveries.fanOut(job.data.eventId) };
      default:
        throw new Error(`unknown alert-events job ${job.name}`);
    }
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn({ err: err.message }, 'alert-events worker error');
  }
}
