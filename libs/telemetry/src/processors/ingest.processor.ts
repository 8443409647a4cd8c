import { AppConfig } from '@app/config';
import { DrainingWorkerHost, OutageService, QUEUES } from '@app/queue';
import { OnWorkerEvent, Processor } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DelayedError, Job, UnrecoverableError } from 'bullmq';
import { TelemetryIngestService } from '../telemetry-ingest.service';
import type { IngestJob } from '../telemetry.service';

/** How long a batch that arrived before its predecessor waits before looking again. */
const WAIT_FOR_PREDECESSOR_MS = 100;

@Processor(QUEUES.TELEMETRY_INGEST, { autorun: false })
export class IngestProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly ingest: TelemetryIngestService,
    private readonly config: ConfigService<AppConfig, true>,
    outage: OutageService,
  ) {
    super(outage);
  }

  private readonly logger = new Logger(IngestProcessor.name);

  onApplicationBootstrap(): void {
    this.start(this.config.get('worker', { infer: true }));
  }

  protected async handle(job: Job<IngestJob>, token?: string): Promise<unknown> {
    switch (job.name) {
      case 'ingest-batch': {
        const result = await this.ingest.apply(job);
        if (result.kind === 'wait') {
          // Not an attempt: the batch is fine, its predecessor just isn't stored yet.
          await job.moveToDelayed(Date.now() + WAIT_FOR_PREDECESSOR_MS, token);
          throw new DelayedError();
        }
        return result;
      }
      default:
        throw new Error(`unknown ingest job ${job.name}`);
    }
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn({ err: err.message }, 'ingest worker error');
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job<IngestJob> | undefined, err: Error): Promise<void> {
    const final =
      err instanceof UnrecoverableError || job?.attemptsMade === (job?.opts.attempts ?? 1);
    if (!job || !final) return; // will be retried
    try {
      await this.ingest.deadLettered(job, err);
    } catch (e) {
      // The payload stays in the failed job (kept a week) for an operator to retry.
      this.logger.error(
        { err: (e as Error).message, batchId: job.data.batchId },
        'could not set a failed batch aside',
      );
    }
  }
}
