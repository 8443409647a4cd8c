import { WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';

export interface WorkerTuning {
  concurrency: number;
  /** A crashed worker's job becomes runnable again this long after its last lock renewal. */
  lockDurationMs: number;
}

/**
 * Base of our processors.
 *
 * - Shutdown: @nestjs/bullmq closes `@Processor` workers last, after the queues, so a job
 *   finishing during shutdown could fail to enqueue its follow-up. Closing the worker
 *   first lets in-flight jobs complete with every connection still open.
 * - Tuning from configuration: `@Processor` options are static, and BullMQ builds its lock
 *   manager in the constructor. Processors declare `autorun: false`; {@link start} applies
 *   the tuning, rebuilds the lock manager with it, and starts the worker.
 */
export abstract class DrainingWorkerHost extends WorkerHost implements BeforeApplicationShutdown {
  protected start(tuning: WorkerTuning): void {
    const worker = this.worker;
    worker.concurrency = tuning.concurrency;
    worker.opts.lockDuration = tuning.lockDurationMs;
    worker.opts.lockRenewTime = tuning.lockDurationMs / 2;
    worker.opts.stalledInterval = Math.min(30000, tuning.lockDurationMs);
    worker.opts.maxStalledCount = 5;
    (worker as unknown as { createLockManager(): void }).createLockManager();
    worker
      .run()
      .catch((err: unknown) => new Logger(this.constructor.name).error({ err }, 'worker stopped'));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
