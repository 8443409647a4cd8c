import { JobHandlers, JobOf, QueueHandler, QUEUES } from '@app/queue';
import { Injectable, Logger } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { BatchStoreService } from '../batch-store.service';

/** How long a batch that arrived before its predecessor waits before looking again. */
const WAIT_FOR_PREDECESSOR_MS = 100;

/** The `telemetry-ingest` queue (worker side): each job is one accepted batch to store. */
@Injectable()
export class IngestHandler implements QueueHandler<typeof QUEUES.TELEMETRY_INGEST> {
  static readonly queue = QUEUES.TELEMETRY_INGEST;
  private readonly logger = new Logger(IngestHandler.name);

  constructor(private readonly store: BatchStoreService) {}

  readonly jobs: JobHandlers<typeof QUEUES.TELEMETRY_INGEST> = {
    'ingest-batch': async (job, token) => {
      let result = await this.store.apply(job);
      // Its predecessor may have been stored while this one looked (and could not be
      // moved up then: it was running): look once more before stepping aside.
      if (result.kind === 'wait' && !(await this.store.isEarly(job.data)))
        result = await this.store.apply(job);
      if (result.kind === 'wait') {
        // Not an attempt: the batch is fine, its predecessor just isn't stored yet.
        await job.moveToDelayed(Date.now() + WAIT_FOR_PREDECESSOR_MS, token);
        throw new DelayedError();
      }
      return result;
    },
  };

  /** Attempts used up: the batch is set aside so the device's later batches go on. */
  async failedForGood(job: JobOf<typeof QUEUES.TELEMETRY_INGEST>, err: Error): Promise<void> {
    try {
      await this.store.deadLettered(job, err);
    } catch (e) {
      // The payload stays in the failed job (kept a week) for an operator to retry.
      this.logger.error(
        { err: (e as Error).message, batchId: job.data.batchId },
        'could not set a failed batch aside',
      );
    }
  }
}
