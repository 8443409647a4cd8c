import { AlertsWorkerModule } from '@app/alerts';
import { TelemetryModule } from '@app/telemetry';
import { TenancyModule } from '@app/tenancy';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DeviceRulesRepository } from './device-rules.repository';
import { RuleEntity } from './entities/rule.entity';
import { EvaluationHandler } from './handlers/evaluation.handler';
import { EvaluationService } from './evaluation.service';
import { OfflineRulesRepository } from './offline-rules.repository';
import { OfflineScan } from './offline-scan.service';

/** Rule evaluation: the consumer of `rule-evaluation` (worker only). */
@Module({
  imports: [
    TypeOrmModule.forFeature([RuleEntity]),
    TenancyModule,
    TelemetryModule,
    AlertsWorkerModule,
  ],
  providers: [
    DeviceRulesRepository,
    EvaluationService,
    EvaluationHandler,
    OfflineRulesRepository,
    OfflineScan,
  ],
  exports: [EvaluationService, EvaluationHandler, OfflineScan],
})
export class RulesWorkerModule {
  static readonly handlers = [EvaluationHandler] as const;
}
