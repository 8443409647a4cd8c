import { classifyFailure } from '@app/common';
import { WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { DelayedError, Job, WaitingChildrenError } from 'bullmq';
import { OutageService } from './outage.service';

export interface WorkerTuning {
  concurrency: number;
  /** A crashed worker's job becomes runnable again this long after its last lock renewal. */
  lockDurationMs: number;
}

/** A deadlock or serialization failure is tried again at once, this many times. */
const TRANSIENT_RETRIES = 5;
/** A job given back at shutdown (while waiting out an outage) runs again after this. */
const HAND_BACK_DELAY_MS = 1000;

/**
 * Base of our processors: subclasses implement {@link handle}.
 *
 * - Outages: work that fails because PostgreSQL or Redis is unreachable (see
 *   `classifyFailure`) waits in {@link OutageService} until both answer and runs again,
 *   however long that takes, without using one of the job's attempts; the job keeps its
 *   place (and a device its order). Deadlocks and serialization failures run again at
 *   once. Only other errors use attempts. Handlers are idempotent, so running again after
 *   an ambiguous failure (a commit whose answer was lost) is safe.
 * - Shutdown: @nestjs/bullmq closes `@Processor` workers last, after the queues, so a job
 *   finishing during shutdown could fail to enqueue its follow-up. Closing the worker
 *   first lets in-flight jobs complete with every connection still open. A job waiting
 *   out an outage is handed back to the queue (delayed, no attempt used) instead.
 * - Tuning from configuration: `@Processor` options are static, and BullMQ builds its lock
 *   manager in the constructor. Processors declare `autorun: false`; {@link start} applies
 *   the tuning, rebuilds the lock manager with it, and starts the worker.
 */
export abstract class DrainingWorkerHost extends WorkerHost implements BeforeApplicationShutdown {
  protected readonly hostLogger = new Logger(this.constructor.name);

  constructor(protected readonly outage: OutageService) {
    super();
  }

  /** The job's work. Throw to fail it; throw DelayedError after moving it to wait. */
  protected abstract handle(job: Job, token?: string): Promise<unknown>;

  async process(job: Job, token?: string): Promise<unknown> {
    for (let retry = 0, transient = 0; ;) {
      try {
        return await this.handle(job, token);
      } catch (err) {
        if (err instanceof DelayedError || err instanceof WaitingChildrenError) throw err;
        const kind = classifyFailure(err);
        if (kind === 'transient' && transient++ < TRANSIENT_RETRIES) continue;
        if (kind !== 'outage') throw err;
        try {
          await this.outage.waitForDependencies(this.worker.name, retry++, err);
        } catch {
          return this.handBack(job, token, err);
        }
      }
    }
  }

  /** Shutting down mid-outage: the job goes back to the queue without using an attempt. */
  private async handBack(job: Job, token: string | undefined, cause: unknown): Promise<never> {
    try {
      await job.moveToDelayed(Date.now() + HAND_BACK_DELAY_MS, token);
    } catch {
      // Redis is away too: the lock lapses and another worker picks the job up as stalled.
      throw cause;
    }
    throw new DelayedError();
  }

  protected start(tuning: WorkerTuning): void {
    const worker = this.worker;
    worker.concurrency = tuning.concurrency;
    worker.opts.lockDuration = tuning.lockDurationMs;
    worker.opts.lockRenewTime = tuning.lockDurationMs / 2;
    worker.opts.stalledInterval = Math.min(30000, tuning.lockDurationMs);
    worker.opts.maxStalledCount = 5;
    (worker as unknown as { createLockManager(): void }).createLockManager();
    worker.run().catch((err: unknown) => this.hostLogger.error({ err }, 'worker stopped'));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.outage.shutdown();
    await this.worker?.close();
  }
}
