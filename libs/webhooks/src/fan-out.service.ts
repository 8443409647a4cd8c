import { AlertEventsRepository, SilencesRepository, TEST_EVENT_TYPE } from '@app/alerts';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DeliveryLedgerRepository } from './delivery-ledger.repository';
import { DeliveryQueue } from './delivery-queue';

/** Alert events to webhook deliveries (the alert-events queue's work). */
@Injectable()
export class FanOutService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly events: AlertEventsRepository,
    private readonly silences: SilencesRepository,
    private readonly ledger: DeliveryLedgerRepository,
    private readonly deliveryQueue: DeliveryQueue,
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
   * A `webhook.test` event is never fanned out: it has its one delivery from the start
   * (and is written dispatched, so this only meets one handed on by hand).
   *
   * An event whose alert a silence covered when it happened is muted instead: dispatched
   * with no deliveries, the silence noted on the event and the alert, and, while the alert
   * stays active, its latest state owed to the webhooks once no silence covers it
   * ({@link SilenceRelease} hands that event back, marked unmuted, and it is sent).
   */
  async fanOut(eventId: string): Promise<number> {
    const pending = await this.dataSource.transaction(async (em) => {
      const event = await this.events.lockForFanOut(em, eventId);
      if (!event) return [];
      if (event.type === TEST_EVENT_TYPE) {
        await this.events.markDispatched(em, eventId);
        return [];
      }
      if (event.alertId && !event.unmutedAt) {
        const silence = await this.silences.mutingSilence(em, event.alertId, event.createdAt);
        if (silence) {
          await this.silences.mute(em, event.id, event.alertId, silence);
          return [];
        }
      }
      const deliveries = await this.ledger.createForEvent(em, event);
      await this.events.markDispatched(em, eventId);
      return deliveries;
    });
    await this.deliveryQueue.enqueue(pending);
    return pending.length;
  }
}
