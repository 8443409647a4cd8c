import { classifyFailure } from '@app/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import {
  BeforeApplicationShutdown,
  Inject,
  Logger,
  OnApplicationBootstrap,
  Provider,
  Type,
} from '@nestjs/common';
import { DelayedError, Job, RedisOptions, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { OutageService } from './outage.service';
import { JobOf } from './producer';
import { QUEUES, QueueName } from './queue.constants';
import { JobName } from './queue.jobs';

/** What a queue's handler does with each job name; a missing name is a compile error. */
export type JobHandlers<Q extends QueueName> = {
  [N in JobName<Q>]: (job: JobOf<Q, N>, token: string | undefined) => Promise<unknown>;
};

/**
 * The work of one queue, as a plain provider of its feature lib: what each job does
 * (throw to fail it; throw DelayedError after moving it to delayed) and, optionally, what
 * happens to a job that failed for good. {@link queueConsumers} wraps it in the worker.
 */
export interface QueueHandler<Q extends QueueName> {
  readonly jobs: JobHandlers<Q>;
  failedForGood?(job: JobOf<Q>, err: Error): Promise<void>;
}

/** A handler class, with the queue it consumes as a static field. */
export interface QueueHandlerClass<Q extends QueueName = QueueName> extends Type<QueueHandler<Q>> {
  readonly queue: Q;
}

export interface WorkerTuning {
  concurrency: number;
  /** A crashed worker's job becomes runnable again this long after its last lock renewal. */
  lockDurationMs: number;
  /**
   * The consumer's own Redis connection (the shared one, `redisOptionsFromUrl`). Always
   * given: @nestjs/bullmq otherwise hands a processor the options its queue was registered
   * with, and a fail-fast producer's (no offline queue, no resend) would leave a command
   * cut off by a reconnect unanswered for good, and the consumer stuck behind it.
   */
  connection: RedisOptions;
  /** The queue's key prefix (`queuePrefix`). */
  prefix: string;
}

/** A deadlock or serialization failure is tried again at once, this many times. */
const TRANSIENT_RETRIES = 5;
/** A job given back at shutdown (while waiting out an outage) runs again after this. */
const HAND_BACK_DELAY_MS = 1000;

/**
 * The one processor of the worker, shared by every queue; {@link queueConsumers} makes a
 * subclass per queue with its tuning in `@Processor` options (BullMQ's public API).
 *
 * - Outages: work that fails because PostgreSQL or Redis is unreachable (see
 *   `classifyFailure`) waits in {@link OutageService} until both answer and runs again,
 *   however long that takes, without using one of the job's attempts; the job keeps its
 *   place (and a device its order). Deadlocks and serialization failures run again at
 *   once. Only other errors use attempts. Handlers are idempotent, so running again after
 *   an ambiguous failure (a commit whose answer was lost) is safe.
 * - Start: workers are built with `autorun: false` and run once the whole application is
 *   up (every provider initialised), with their errors logged here, once.
 * - Shutdown: @nestjs/bullmq closes processors' workers last, after the queues, so a job
 *   finishing during shutdown could fail to enqueue its follow-up. Closing the worker
 *   first lets in-flight jobs complete with every connection still open. A job waiting
 *   out an outage is handed back to the queue (delayed, no attempt used) instead.
 */
export abstract class QueueConsumerHost<Q extends QueueName>
  extends WorkerHost
  implements OnApplicationBootstrap, BeforeApplicationShutdown
{
  protected readonly logger = new Logger(this.constructor.name);

  constructor(
    protected readonly handler: QueueHandler<Q>,
    protected readonly outage: OutageService,
  ) {
    super();
  }

  async process(job: Job, token?: string): Promise<unknown> {
    const run = (
      this.handler.jobs as unknown as Record<string, (j: Job, t?: string) => Promise<unknown>>
    )[job.name];
    if (!run) throw new UnrecoverableError(`unknown job "${job.name}" on ${this.worker.name}`);
    for (let retry = 0, transient = 0; ;) {
      try {
        return await run(job, token);
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

  onApplicationBootstrap(): void {
    const worker = this.worker;
    worker.on('error', (err) =>
      this.logger.warn({ err: err.message, queue: worker.name }, 'worker connection error'),
    );
    const failedForGood = this.handler.failedForGood?.bind(this.handler);
    if (failedForGood)
      worker.on('failed', (job, err) => {
        const final =
          err instanceof UnrecoverableError || job?.attemptsMade === (job?.opts.attempts ?? 1);
        if (!job || !final) return; // will be retried
        failedForGood(job as JobOf<Q>, err).catch((e: Error) =>
          this.logger.error(
            { err: e.message, queue: worker.name, jobId: job.id },
            'could not handle a job that failed for good',
          ),
        );
      });
    worker.run().catch((err: unknown) => this.logger.error({ err }, 'worker stopped'));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.outage.shutdown();
    await this.worker?.close();
  }
}

/** The processor of one handler, with the tuning in its `@Processor` options. */
export function consumerFor<Q extends QueueName>(
  handler: QueueHandlerClass<Q>,
  tuning: WorkerTuning,
): Type<QueueConsumerHost<Q>> {
  @Processor(handler.queue, {
    autorun: false,
    concurrency: tuning.concurrency,
    lockDuration: tuning.lockDurationMs,
    lockRenewTime: tuning.lockDurationMs / 2,
    stalledInterval: Math.min(30000, tuning.lockDurationMs),
    maxStalledCount: 5,
    connection: tuning.connection,
    prefix: tuning.prefix,
  })
  class Consumer extends QueueConsumerHost<Q> {
    constructor(@Inject(handler) h: QueueHandler<Q>, outage: OutageService) {
      super(h, outage);
    }
  }
  Object.defineProperty(Consumer, 'name', { value: `${handler.name}Consumer` });
  return Consumer;
}

/**
 * A processor per handler, after checking that every queue of `queues` has exactly one
 * handler: a worker that would silently leave a queue unconsumed, or consume it twice,
 * fails at start instead.
 */
export function queueConsumers(
  handlers: QueueHandlerClass[],
  tuningOf: (queue: QueueName) => WorkerTuning,
  queues: readonly QueueName[] = Object.values(QUEUES),
): Provider[] {
  for (const queue of queues) {
    const found = handlers.filter((h) => h.queue === queue);
    if (found.length !== 1)
      throw new Error(
        found.length === 0
          ? `no handler consumes queue "${queue}"`
          : `queue "${queue}" has ${found.length} handlers: ${found.map((h) => h.name).join(', ')}`,
      );
  }
  const stray = handlers.find((h) => !queues.includes(h.queue));
  if (stray) throw new Error(`${stray.name} consumes "${stray.queue}", not a queue of this worker`);
  return handlers.map((h) => consumerFor(h, tuningOf(h.queue)));
}
