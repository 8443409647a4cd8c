import { ProducersModule, QUEUES } from '@app/queue';
import { TenancyModule } from '@app/tenancy';
import { Module } from '@nestjs/common';
import { IngestBacklog } from './ingest-backlog';
import { TelemetryIntakeService } from './telemetry-intake.service';
import { TelemetryReadsService } from './telemetry-reads.service';
import { TelemetryRepository } from './telemetry.repository';

/**
 * The `telemetry-ingest` producer. No offline queue: with Redis away, `add` fails at once
 * (a 503) instead of buffering in memory. Exported for the worker side, which looks up a
 * batch's predecessor and audits the backlog through it.
 */
const ingestProducer = ProducersModule.forQueues({
  name: QUEUES.TELEMETRY_INGEST,
  failFast: true,
});

/** Ingestion (api side: {@link TelemetryIntakeService}) and telemetry reads. */
@Module({
  imports: [TenancyModule, ingestProducer],
  providers: [TelemetryRepository, TelemetryIntakeService, TelemetryReadsService, IngestBacklog],
  exports: [
    TelemetryRepository,
    TelemetryIntakeService,
    TelemetryReadsService,
    IngestBacklog,
    ingestProducer,
  ],
})
export class TelemetryModule {}
