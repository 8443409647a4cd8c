import { ProducersModule, QUEUES } from '@app/queue';
import { Module } from '@nestjs/common';
import { AlertGauges } from './alert-gauges';
import { AlertsModule } from './alerts.module';
import { DeviceAlertsRepository } from './device-alerts.repository';
import { OutboxRelay } from './outbox-relay.service';

/** The evaluator's access to alerts and the outbox relay (worker only). */
@Module({
  imports: [AlertsModule, ProducersModule.forQueues(QUEUES.ALERT_EVENTS)],
  providers: [DeviceAlertsRepository, OutboxRelay, AlertGauges],
  exports: [AlertsModule, DeviceAlertsRepository, OutboxRelay],
})
export class AlertsWorkerModule {}
