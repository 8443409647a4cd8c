import { AlertsModule } from '@app/alerts';
import { ProducersModule, QUEUES } from '@app/queue';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CircuitBreakerService } from './circuit-breaker.service';
import { DeliveryQueue } from './delivery-queue';
import { WebhookAttemptEntity } from './entities/webhook-attempt.entity';
import { WebhookDeliveryEntity } from './entities/webhook-delivery.entity';
import { WebhookEntity } from './entities/webhook.entity';
import { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';
import { WebhookSecretCodec } from './webhook-secrets';
import { webhookSecretCodecProvider } from './webhook-secrets.provider';

/** Webhook subscriptions, deliveries (read and retry) and the shared circuit breaker. */
@Module({
  imports: [
    TypeOrmModule.forFeature([WebhookEntity, WebhookDeliveryEntity, WebhookAttemptEntity]),
    ProducersModule.forQueues({ name: QUEUES.WEBHOOK_DELIVERY, failFast: true }),
    // The outbox: a test event (`POST /webhooks/{id}/test`) is written there.
    AlertsModule,
  ],
  providers: [
    WebhooksRepository,
    WebhooksService,
    CircuitBreakerService,
    DeliveryQueue,
    webhookSecretCodecProvider,
  ],
  exports: [
    WebhooksRepository,
    WebhooksService,
    CircuitBreakerService,
    DeliveryQueue,
    WebhookSecretCodec,
  ],
})
export class WebhooksModule {}
