import { PeriodicTask } from '@app/common';
import { WorkerRoles } from '@app/config';
import { InjectProducer, JobOf, Producer, QUEUES } from '@app/queue';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DelayedError } from 'bullmq';
import { DataSource } from 'typeorm';
import { AlertRemindersRepository, ReminderState } from './alert-reminders.repository';
import { OutboxRelay } from './outbox-relay.service';

/** Reminder `n` of an alert is due `n` intervals after the alert was opened. */
export const reminderDueAt = (a: ReminderState, n: number): number =>
  a.createdAt.getTime() + n * (a.intervalSeconds ?? 0) * 1000;

/** One job id per reminder: adding it twice while it waits is a no-op. */
export const reminderJobId = (alertId: string, n: number): string => `r-${alertId}-${n}`;

/** How often the sweep looks for reminders whose job is gone, and how late one must be. */
export const REMINDER_SWEEP_MS = 60000;
export const REMINDER_SWEEP_GRACE_MS = 60000;
const SWEEP_PAGE = 500;

/**
 * Reminders: while an alert stays open (not acknowledged, not resolved), an
 * `alert.reminder` event every `reminder_interval_seconds` of its rule, as delayed jobs on
 * the alert-events queue, one at a time: reminder n+1 is scheduled only by the run that
 * wrote reminder n (or found it written), and reminder n is written only while the
 * alert's `reminders_sent` is below n, under the alert's row lock. So a job run twice,
 * by one worker or several, writes one event, and an ack or a resolve stops the chain at
 * the next due time. No table scan: each open alert with an interval has exactly one
 * job waiting.
 *
 * Redis is not the record: if it loses the waiting job (a flush, a failover without
 * persistence, a move to a new Redis) or the job fails for good, the sweep, every minute
 * where alert events are consumed, finds the open alerts whose next reminder is a minute
 * overdue and schedules it again (by its one job id, so twice is once).
 */
@Injectable()
export class AlertReminders implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(AlertReminders.name);
  private readonly sweeper = new PeriodicTask(
    REMINDER_SWEEP_MS,
    () => this.sweep(),
    this.logger,
    'reminder sweep failed',
  );

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly alerts: AlertRemindersRepository,
    @InjectProducer(QUEUES.ALERT_EVENTS) private readonly queue: Producer<'alert-events'>,
    private readonly relay: OutboxRelay,
    private readonly roles: WorkerRoles,
  ) {}

  onApplicationBootstrap(): void {
    if (this.roles.runs('alert-events', 'reminder sweep')) this.sweeper.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.sweeper.stop();
  }

  /** After an event's fan-out: an `alert.created` of a rule with reminders starts the chain. */
  async afterEvent(eventId: string): Promise<void> {
    const alert = await this.alerts.openedBy(this.dataSource.manager, eventId);
    if (!alert?.intervalSeconds || alert.status !== 'open') return;
    await this.schedule(alert, alert.remindersSent + 1);
  }

  /** Runs reminder job `n`; see the class comment. */
  async remind(
    job: JobOf<typeof QUEUES.ALERT_EVENTS, 'alert-reminder'>,
    token: string | undefined,
  ): Promise<string> {
    const { alertId, n } = job.data;
    const step = await this.dataSource.transaction(async (em) => {
      const alert = await this.alerts.lock(em, alertId);
      if (!alert?.intervalSeconds || alert.status !== 'open') return { kind: 'stopped' as const };
      if (alert.remindersSent > n) return { kind: 'stale' as const };
      if (alert.remindersSent === n) return { kind: 'next' as const, alert };
      const due = reminderDueAt(alert, n);
      if (due > Date.now() + 1000) return { kind: 'early' as const, due };
      await this.alerts.record(em, alertId, n);
      return { kind: 'sent' as const, alert: { ...alert, remindersSent: n } };
    });
    if (step.kind === 'early') {
      // The interval grew since, or clocks disagree: wait for the real due time.
      await job.moveToDelayed(step.due, token);
      throw new DelayedError();
    }
    if (step.kind === 'sent' || step.kind === 'next')
      await this.schedule(step.alert, n + 1, { late: 'skip' });
    if (step.kind === 'sent') {
      this.logger.log({ alertId, reminder: n }, 'alert still open and unacknowledged: reminder');
      await this.relay.relay().catch(() => undefined);
    }
    return step.kind;
  }

  /**
   * Schedules again every reminder overdue by more than `graceMs` whose job Redis no longer
   * has waiting (gone, or failed for good); returns how many.
   */
  async sweep(graceMs = REMINDER_SWEEP_GRACE_MS): Promise<number> {
    const overdue = await this.alerts.overdue(this.dataSource.manager, graceMs, SWEEP_PAGE);
    let scheduled = 0;
    for (const alert of overdue) {
      const n = alert.remindersSent + 1;
      const job = await this.queue.getJob(reminderJobId(alert.alertId, n));
      const state = (await job?.getState()) ?? 'unknown';
      if (!['unknown', 'failed', 'completed'].includes(state)) continue;
      await job?.remove();
      await this.schedule(alert, n);
      scheduled++;
    }
    if (scheduled > 0)
      this.logger.warn({ scheduled }, 'reminders overdue with no job waiting: scheduled again');
    return scheduled;
  }

  /**
   * Puts reminder job `n` on the queue, delayed until it is due. A reminder already late
   * goes at once, except a chain's next one with `late: 'skip'`: after an outage the chain
   * resumes one interval later instead of sending every reminder it missed in a burst.
   */
  private async schedule(
    alert: ReminderState,
    n: number,
    { late = 'now' }: { late?: 'now' | 'skip' } = {},
  ): Promise<void> {
    const wait = reminderDueAt(alert, n) - Date.now();
    const interval = (alert.intervalSeconds ?? 0) * 1000;
    await this.queue.add(
      'alert-reminder',
      { projectId: alert.projectId, alertId: alert.alertId, n, correlationId: alert.alertId },
      {
        jobId: reminderJobId(alert.alertId, n),
        delay: wait >= 0 ? wait : late === 'skip' ? interval : 0,
      },
    );
  }
}
