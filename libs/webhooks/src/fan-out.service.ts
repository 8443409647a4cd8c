import {
  AlertEventRecord,
  AlertEventsRepository,
  AlertReminders,
  EventFanOut,
  SilencesRepository,
  TEST_EVENT_TYPE,
} from '@app/alerts';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { DeliveryLedgerRepository, DeliveryRef } from './delivery-ledger.repository';
import { DeliveryQueue } from './delivery-queue';

/** The events that open an alert, after whose fan-out an alert with reminders starts its chain. */
const OPENING = new Set<AlertEventRecord['type']>(['alert.created', 'device.offline']);

/** Alert events to webhook deliveries (the alert-events queue's work, and the evaluator's). */
@Injectable()
export class FanOutService implements EventFanOut {
  private readonly logger = new Logger(FanOutService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly events: AlertEventsRepository,
    private readonly silences: SilencesRepository,
    private readonly ledger: DeliveryLedgerRepository,
    private readonly deliveryQueue: DeliveryQueue,
    private readonly reminders: AlertReminders,
  ) {}

  /**
   * Fan-out of one alert event: one delivery per enabled webhook of its project that takes
   * its type and existed when it happened, and the event marked dispatched in the same
   * transaction (the event row locked for it), so an event is dispatched exactly when its
   * deliveries exist (the outbox relay hands undispatched events on again). Idempotent
   * (unique (webhook_id, event_id)), so a repeated alert-events job adds nothing; every
   * pending delivery of the event is (re-)enqueued after the commit, a no-op for one that
   * already has a job. A lost enqueue is the delivery sweeper's to repair. Returns the
   * number of the event's pending deliveries; 0 for an event that no longer exists.
   */
  async fanOut(eventId: string): Promise<number> {
    const pending = await this.dataSource.transaction(async (em) => {
      const event = await this.events.lockForFanOut(em, eventId);
      return event ? this.fanOutLocked(em, [event]) : [];
    });
    await this.deliveryQueue.enqueue(pending);
    return pending.length;
  }

  /**
   * {@link EventFanOut}: the same fan-out for the events an evaluation wrote, in its
   * transaction; once it committed, their deliveries are enqueued and an alert it opened
   * under a rule with reminders starts its chain (what the alert-events job does after its
   * fan-out). A failure after the commit is logged and left to the sweeps: the delivery
   * sweeper enqueues pending deliveries that have no job, the reminder sweep schedules an
   * overdue reminder.
   */
  async fanOutWritten(em: EntityManager, alertIds: string[]): Promise<() => Promise<void>> {
    const events = await this.events.lockUndispatchedOf(em, alertIds);
    const pending = await this.fanOutLocked(em, events);
    const opening = events.filter((e) => OPENING.has(e.type));
    const failed = (what: string, err: unknown) =>
      this.logger.warn(
        { events: events.map((e) => e.id), err: (err as Error).message },
        `${what} failed after the fan-out; its sweep will see to it`,
      );
    return async () => {
      await this.deliveryQueue
        .enqueue(pending)
        .catch((err) => failed('enqueueing deliveries', err));
      for (const event of opening)
        await this.reminders
          .afterEvent(event.id)
          .catch((err) => failed('scheduling the first reminder', err));
    };
  }

  /**
   * The fan-out of events locked by the caller's transaction, a few statements for any
   * number of them; returns their pending deliveries. A `webhook.test` event is never
   * fanned out: it has its one delivery from the start (and is written dispatched, so
   * this only meets one handed on by hand).
   *
   * An event whose alert a silence covered when it happened is muted instead: dispatched
   * with no deliveries, the silence noted on the event and the alert, and, while the alert
   * stays active, its latest state owed to the webhooks once no silence covers it
   * ({@link SilenceRelease} hands that event back, marked unmuted, and it is sent).
   */
  private async fanOutLocked(
    em: EntityManager,
    events: AlertEventRecord[],
  ): Promise<DeliveryRef[]> {
    const tests = events.filter((e) => e.type === TEST_EVENT_TYPE);
    const alertEvents = events.filter((e) => e.type !== TEST_EVENT_TYPE);
    const checked = alertEvents.filter((e) => e.alertId && !e.unmutedAt);
    const muting = await this.silences.mutingSilences(
      em,
      checked.map((e) => ({ alertId: e.alertId!, at: e.createdAt })),
    );
    const muted = new Set<AlertEventRecord>();
    for (let i = 0; i < checked.length; i++) {
      const silence = muting[i];
      if (silence === null) continue;
      await this.silences.mute(em, checked[i].id, checked[i].alertId!, silence);
      muted.add(checked[i]);
    }
    const sent = alertEvents.filter((e) => !muted.has(e));
    const deliveries = await this.ledger.createForEvents(em, sent);
    await this.events.markDispatched(
      em,
      [...tests, ...sent].map((e) => e.id),
    );
    return deliveries;
  }
}
