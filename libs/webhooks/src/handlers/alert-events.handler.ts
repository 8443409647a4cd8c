import { AlertReminders } from '@app/alerts';
import { JobHandlers, QUEUES, QueueHandler } from '@app/queue';
import { Injectable } from '@nestjs/common';
import { FanOutService } from '../fan-out.service';

/**
 * Alert events from the outbox → one delivery per matching webhook (an `alert.created`
 * of a rule with reminders also schedules the first); reminder jobs → `alert.reminder`
 * events.
 */
@Injectable()
export class AlertEventsHandler implements QueueHandler<typeof QUEUES.ALERT_EVENTS> {
  static readonly queue = QUEUES.ALERT_EVENTS;

  readonly jobs: JobHandlers<typeof QUEUES.ALERT_EVENTS> = {
    'alert-event': async (job) => {
      const deliveries = await this.fanOut.fanOut(job.data.eventId);
      await this.reminders.afterEvent(job.data.eventId);
      return { deliveries };
    },
    'alert-reminder': async (job, token) => ({ reminder: await this.reminders.remind(job, token) }),
  };

  constructor(
    private readonly fanOut: FanOutService,
    private readonly reminders: AlertReminders,
  ) {}
}
