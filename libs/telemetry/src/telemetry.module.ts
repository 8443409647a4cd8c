import { AppConfig } from '@app/config';
import { QUEUES, redisOptionsFromUrl } from '@app/queue';
import { TenancyModule } from '@app/tenancy';
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { IngestBacklog } from './ingest-backlog';
import { TelemetryRepository } from './telemetry.repository';
import { TelemetryService } from './telemetry.service';

/**
 * Ingestion (api side) and telemetry reads. The producer connection has no offline
 * queue: with Redis away, `add` fails at once instead of buffering in memory.
 */
@Module({
  imports: [
    TenancyModule,
    BullModule.registerQueueAsync({
      name: QUEUES.TELEMETRY_INGEST,
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) => ({
        connection: {
          ...redisOptionsFromUrl(config.get('redis', { infer: true }).url),
          enableOfflineQueue: false,
        },
      }),
    }),
  ],
  providers: [TelemetryRepository, TelemetryService, IngestBacklog],
  exports: [TelemetryRepository, TelemetryService, IngestBacklog, BullModule],
})
export class TelemetryModule {}
