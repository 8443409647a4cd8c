import { InjectProducer, Producer, QUEUES } from '@app/queue';
import { Injectable } from '@nestjs/common';
import { JobsOptions } from 'bullmq';
import type { DeliveryRef } from './delivery-ledger.repository';

/**
 * A delivery's job is its id (`jobId = deliveryId`), so there is at most one live job per
 * delivery however often it is enqueued (fan-out repeated, the sweeper, a manual retry).
 * PostgreSQL stays the record: the row says what is due, and a job only carries the id.
 * Jobs leave Redis when they end, so the id is free again for the next manual retry.
 * BullMQ's own retries (`attempts`) only cover a crash of our code (PostgreSQL away); the
 * subscriber's failures are retried by the delivery's schedule, not by them.
 */
export const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
  removeOnComplete: true,
  removeOnFail: true,
};

@Injectable()
export class DeliveryQueue {
  constructor(
    @InjectProducer(QUEUES.WEBHOOK_DELIVERY)
    private readonly producer: Producer<typeof QUEUES.WEBHOOK_DELIVERY>,
  ) {}

  /** Enqueues deliveries that have no job yet (existing jobs keep their schedule). */
  async enqueue(deliveries: DeliveryRef[]): Promise<void> {
    if (deliveries.length === 0) return;
    await this.producer.addBulk(
      deliveries.map((d) => ({
        name: 'deliver-event' as const,
        data: {
          projectId: d.projectId,
          deliveryId: d.deliveryId,
          correlationId: d.deliveryId,
          ...(d.eventId ? { eventId: d.eventId } : {}),
        },
        opts: { ...DELIVERY_JOB_OPTIONS, jobId: d.deliveryId },
      })),
    );
  }

  /** Makes a delivery's job run now: a waiting one is promoted, a missing one created. */
  async runNow(projectId: string, deliveryId: string): Promise<void> {
    const job = await this.producer.getJob(deliveryId);
    if (job) {
      const state = await job.getState();
      if (state === 'delayed') {
        await job.promote().catch(() => undefined);
        return;
      }
      if (state === 'failed' || state === 'completed') await job.remove().catch(() => undefined);
      else if (state !== 'unknown') return; // active or waiting: it reads the row when it runs
    }
    await this.enqueue([{ projectId, deliveryId }]);
  }
}
