import { QUEUES } from '@app/queue';
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { IngestProcessor } from './processors/ingest.processor';
import { TelemetryIngestService } from './telemetry-ingest.service';
import { TelemetryModule } from './telemetry.module';

/** Stores accepted batches (worker only). */
@Module({
  imports: [TelemetryModule, BullModule.registerQueue({ name: QUEUES.RULE_EVALUATION })],
  providers: [TelemetryIngestService, IngestProcessor],
})
export class TelemetryWorkerModule {}
