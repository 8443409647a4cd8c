import { QUEUES } from '@app/queue';
import { RulesModule } from '@app/rules';
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { AlertsModule } from './alerts.module';
import { EvaluationService } from './evaluation.service';
import { OutboxRelay } from './outbox-relay.service';
import { EvaluationProcessor } from './processors/evaluation.processor';

/** Rule evaluation and the outbox relay (worker only). */
@Module({
  imports: [
    AlertsModule,
    RulesModule,
    BullModule.registerQueue({ name: QUEUES.RULE_EVALUATION }, { name: QUEUES.ALERT_EVENTS }),
  ],
  providers: [EvaluationService, OutboxRelay, EvaluationProcessor],
  exports: [EvaluationService, OutboxRelay],
})
export class AlertsWorkerModule {}
