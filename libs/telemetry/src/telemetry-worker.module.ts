import { ProducersModule, QUEUES } from '@app/queue';
import { TenancyModule } from '@app/tenancy';
import { DynamicModule, Module, Type } from '@nestjs/common';
import { BATCH_FOLLOWER, BatchFollower } from './batch-follower';
import { BacklogAuditor } from './backlog-auditor.service';
import { BatchStoreService } from './batch-store.service';
import { IngestHandler } from './handlers/ingest.handler';
import { PartitionMaintenance } from './partition-maintenance.service';
import { TelemetryPartitionsRepository } from './telemetry-partitions.repository';
import { TelemetryModule } from './telemetry.module';

/**
 * Stores accepted batches: the consumer of `telemetry-ingest` (worker only); and keeps the
 * table's partitions and retention (role `ingest`).
 */
@Module({
  imports: [TelemetryModule, TenancyModule, ProducersModule.forQueues(QUEUES.RULE_EVALUATION)],
  providers: [
    BatchStoreService,
    IngestHandler,
    BacklogAuditor,
    TelemetryPartitionsRepository,
    PartitionMaintenance,
  ],
  exports: [IngestHandler],
})
export class TelemetryWorkerModule {
  static readonly handlers = [IngestHandler] as const;

  /**
   * With `follower` (exported by `module`) joining each batch's storing transaction: how
   * the worker has rule evaluation done in the same step as storage
   * ({@link BatchFollower}).
   */
  static followedBy(module: Type, follower: Type<BatchFollower>): DynamicModule {
    return {
      module: TelemetryWorkerModule,
      imports: [module],
      providers: [{ provide: BATCH_FOLLOWER, useExisting: follower }],
    };
  }
}
