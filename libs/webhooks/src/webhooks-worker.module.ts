import { Module } from '@nestjs/common';
import { DeliveryService } from './delivery.service';
import { DeliverySlots } from './delivery-slots';
import { SecretResealer } from './secret-resealer.service';
import { DeliverySweeper } from './delivery-sweeper.service';
import { AlertEventsProcessor } from './processors/alert-events.processor';
import { DeliveryProcessor } from './processors/delivery.processor';
import { WebhooksModule } from './webhooks.module';

/** Fan-out of alert events and the signed delivery of each (worker only). */
@Module({
  imports: [WebhooksModule],
  providers: [
    DeliveryService,
    DeliverySlots,
    DeliverySweeper,
    SecretResealer,
    AlertEventsProcessor,
    DeliveryProcessor,
  ],
  exports: [DeliveryService],
})
export class WebhooksWorkerModule {}
