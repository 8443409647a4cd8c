import { ProducersModule, QUEUES } from '@app/queue';
import { TenancyModule } from '@app/tenancy';
import { Module } from '@nestjs/common';
import { BacklogAuditor } from './backlog-auditor.service';
import { BatchStoreService } from './batch-store.service';
import { IngestHandler } from './handlers/ingest.handler';
import { TelemetryModule } from './telemetry.module';

/** Stores accepted batches: the consumer of `telemetry-ingest` (worker only). */
@Module({
  imports: [TelemetryModule, TenancyModule, ProducersModule.forQueues(QUEUES.RULE_EVALUATION)],
  providers: [BatchStoreService, IngestHandler, BacklogAuditor],
  exports: [IngestHandler],
})
export class TelemetryWorkerModule {
  static readonly handlers = [IngestHandler] as const;
}
