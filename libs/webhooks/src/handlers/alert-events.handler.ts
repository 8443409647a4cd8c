import { JobHandlers, QUEUES, QueueHandler } from '@app/queue';
import { Injectable } from '@nestjs/common';
import { FanOutService } from '../fan-out.service';

/** Alert events from the outbox → one delivery per matching webhook. */
@Injectable()
export class AlertEventsHandler implements QueueHandler<typeof QUEUES.ALERT_EVENTS> {
  static readonly queue = QUEUES.ALERT_EVENTS;

  readonly jobs: JobHandlers<typeof QUEUES.ALERT_EVENTS> = {
    'alert-event': async (job) => ({ deliveries: await this.fanOut.fanOut(job.data.eventId) }),
  };

  constructor(private readonly fanOut: FanOutService) {}
}
