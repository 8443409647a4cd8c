import { QUEUES } from '@app/queue';
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { BacklogAuditor } from './backlog-auditor.service';
import { IngestProcessor } from './processors/ingest.processor';
import { TelemetryIngestService } from './telemetry-ingest.service';
import { TelemetryModule } from './telemetry.module';

/** Stores accepted batches (worker only). */
@Module({
  imports: [TelemetryModule, BullModule.registerQueue({ name: QUEUES.RULE_EVALUATION })],
  providers: [TelemetryIngestService, IngestProcessor, BacklogAuditor],
})
export class TelemetryWorkerModule {}
