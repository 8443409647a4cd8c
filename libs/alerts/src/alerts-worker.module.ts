import { ProducersModule, QUEUES } from '@app/queue';
import { Module } from '@nestjs/common';
import { AlertGauges } from './alert-gauges';
import { AlertRemindersRepository } from './alert-reminders.repository';
import { AlertReminders } from './alert-reminders.service';
import { AlertsModule } from './alerts.module';
import { DeviceAlertsRepository } from './device-alerts.repository';
import { OutboxRelay } from './outbox-relay.service';
import { SilenceRelease } from './silence-release.service';

/** The evaluator's access to alerts and the outbox relay (worker only). */
@Module({
  imports: [AlertsModule, ProducersModule.forQueues(QUEUES.ALERT_EVENTS)],
  providers: [
    DeviceAlertsRepository,
    OutboxRelay,
    SilenceRelease,
    AlertGauges,
    AlertRemindersRepository,
    AlertReminders,
  ],
  exports: [AlertsModule, DeviceAlertsRepository, OutboxRelay, SilenceRelease, AlertReminders],
})
export class AlertsWorkerModule {}
