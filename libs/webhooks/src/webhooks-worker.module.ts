import { AlertsWorkerModule } from '@app/alerts';
import { QueueHandlerClass } from '@app/queue';
import { Module } from '@nestjs/common';
import { CircuitGauges } from './circuit-gauges';
import { DeliveryLedgerRepository } from './delivery-ledger.repository';
import { DeliveryService } from './delivery.service';
import { DeliverySlots } from './delivery-slots';
import { DeliverySweeper } from './delivery-sweeper.service';
import { FanOutService } from './fan-out.service';
import { AlertEventsHandler } from './handlers/alert-events.handler';
import { DeliveryHandler } from './handlers/delivery.handler';
import { SecretResealer } from './secret-resealer.service';
import { WebhooksModule } from './webhooks.module';

/**
 * Fan-out of alert events and the signed delivery of each (worker only). The worker app
 * consumes the alert-events and webhook-delivery queues with {@link handlers}.
 */
@Module({
  imports: [WebhooksModule, AlertsWorkerModule],
  providers: [
    DeliveryLedgerRepository,
    DeliveryService,
    FanOutService,
    DeliverySlots,
    DeliverySweeper,
    SecretResealer,
    CircuitGauges,
    AlertEventsHandler,
    DeliveryHandler,
  ],
  exports: [AlertEventsHandler, DeliveryHandler, FanOutService],
})
export class WebhooksWorkerModule {
  /** This module's queue handlers, one per queue it consumes. */
  static readonly handlers: readonly QueueHandlerClass[] = [AlertEventsHandler, DeliveryHandler];
}
