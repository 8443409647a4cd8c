import { asProjectId } from '@app/common';
import { JobHandlers, JobOf, QUEUES, QueueHandler } from '@app/queue';
import { Injectable } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { DeliveryService } from '../delivery.service';

type DeliveryQueueName = typeof QUEUES.WEBHOOK_DELIVERY;

/** A delivery whose project has no free slot looks again after this, doubling per look. */
const SLOT_WAIT_FIRST_MS = 250;
const SLOT_WAIT_MAX_MS = 60000;

/**
 * Webhook deliveries, on their own queue (the worker runs it with `WEBHOOK_CONCURRENCY`),
 * so a slow subscriber holds only these slots, never ingestion's or evaluation's. A
 * delivery that must wait (backoff, Retry-After, an open circuit, its project's slots all
 * taken) moves its own job to the delayed set: no BullMQ attempt is used, and the row in
 * PostgreSQL says when it is due.
 */
@Injectable()
export class DeliveryHandler implements QueueHandler<DeliveryQueueName> {
  static readonly queue = QUEUES.WEBHOOK_DELIVERY;

  readonly jobs: JobHandlers<DeliveryQueueName> = {
    'deliver-event': (job, token) => this.deliver(job, token),
  };

  constructor(private readonly deliveries: DeliveryService) {}

  private async deliver(
    job: JobOf<DeliveryQueueName, 'deliver-event'>,
    token: string | undefined,
  ): Promise<unknown> {
    // The project the job was queued under (by the fan-out, the sweeper or a retry).
    const step = await this.deliveries.deliver(
      asProjectId(job.data.projectId),
      job.data.deliveryId,
      job.data.eventId,
    );
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
}
