import { AppConfig } from '@app/config';
import { DrainingWorkerHost, JobPayloads, OutageService, QUEUES } from '@app/queue';
import { OnWorkerEvent, Processor } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DelayedError, Job } from 'bullmq';
import { DeliveryService } from '../delivery.service';

type DeliverJob = JobPayloads[typeof QUEUES.WEBHOOK_DELIVERY]['deliver-event'];

/** A delivery whose project has no free slot looks again after this, doubling per look. */
const SLOT_WAIT_FIRST_MS = 250;
const SLOT_WAIT_MAX_MS = 60000;

/**
 * Webhook deliveries, on their own queue and concurrency (`WEBHOOK_CONCURRENCY`), so a
 * slow subscriber holds only these slots, never ingestion's or evaluation's. A delivery
 * that must wait (backoff, Retry-After, an open circuit) moves its own job to the delayed
 * set: no BullMQ attempt is used, and the row in PostgreSQL says when it is due.
 */
@Processor(QUEUES.WEBHOOK_DELIVERY, { autorun: false })
export class DeliveryProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(DeliveryProcessor.name);

  constructor(
    private readonly deliveries: DeliveryService,
    private readonly config: ConfigService<AppConfig, true>,
    outage: OutageService,
  ) {
    super(outage);
  }

  onApplicationBootstrap(): void {
    this.start({
      ...this.config.get('worker', { infer: true }),
      concurrency: this.config.get('webhooks', { infer: true }).concurrency,
    });
  }

  protected async handle(job: Job<DeliverJob>, token?: string): Promise<unknown> {
    switch (job.name) {
      case 'deliver-event': {
        const step = await this.deliveries.deliver(job.data.deliveryId, job.data.projectId);
        // It had a slot: the next wait for one starts short again.
        if (!('busy' in step) && job.data.slotWaits)
          await job.updateData({ ...job.data, slotWaits: 0 });
        if (step.done) return step;
        let retryAt: number;
        if ('busy' in step) {
          // Its project has every slot in use. Each look costs a Redis call, so a project
          // with thousands of deliveries waiting looks less and less often (up to a minute).
          const waits = (job.data.slotWaits ?? 0) + 1;
          await job.updateData({ ...job.data, slotWaits: waits });
          const backoff = Math.min(SLOT_WAIT_FIRST_MS * 2 ** (waits - 1), SLOT_WAIT_MAX_MS);
          retryAt = Date.now() + backoff / 2 + Math.random() * backoff;
        } else retryAt = step.retryAt;
        await job.moveToDelayed(retryAt, token);
        throw new DelayedError();
      }
      default:
        throw new Error(`unknown webhook-delivery job ${job.name}`);
    }
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn({ err: err.message }, 'webhook-delivery worker error');
  }
}
