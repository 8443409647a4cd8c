import { AppConfig } from '@app/config';
import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { DynamicModule, Inject, Module, Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Job, JobsOptions, JobState, Queue } from 'bullmq';
import { QueueName } from './queue.constants';
import { JobData, JobName } from './queue.jobs';
import { queuePrefix, redisOptionsFromUrl } from './redis-connection';

/** One job of queue `Q`: its name picks its payload's type. */
export type JobOf<Q extends QueueName, N extends JobName<Q> = JobName<Q>> = {
  [K in N]: Job<JobData<Q, K>, unknown, K>;
}[N];

export type JobRequest<Q extends QueueName> = {
  [N in JobName<Q>]: { name: N; data: JobData<Q, N>; opts?: JobsOptions };
}[JobName<Q>];

/**
 * The one way to put a job on a queue: `add(name, data)` is checked against the job union
 * (`queue.jobs.ts`), so a producer cannot send a payload its consumer does not expect.
 */
export class Producer<Q extends QueueName> {
  constructor(readonly queue: Queue) {}

  get name(): Q {
    return this.queue.name as Q;
  }

  add<N extends JobName<Q>>(name: N, data: JobData<Q, N>, opts?: JobsOptions): Promise<Job> {
    return this.queue.add(name, data, opts);
  }

  addBulk(jobs: Array<JobRequest<Q>>): Promise<Job[]> {
    return this.queue.addBulk(jobs);
  }

  /**
   * A job's state without loading it ('unknown' when Redis does not have it): cheap where
   * `getJob` would read the whole payload (an ingest batch's is up to megabytes).
   */
  getJobState(id: string): Promise<JobState | 'unknown'> {
    return this.queue.getJobState(id);
  }

  /**
   * Moves a delayed or waiting job to the front of the wait list, the next one a worker
   * takes (with BullMQ's own scripts: promote a delayed one, then re-queue it LIFO); false
   * when it was neither. For a job that was only waiting on another one, once that one is
   * done: left where it is, it would wait the whole backlog's length again.
   */
  async hurry(id: string): Promise<boolean> {
    const state = await this.getJobState(id);
    if (state !== 'delayed' && state !== 'waiting') return false;
    // A handle on the job without reading its data: the two scripts need its id only.
    const job = new Job(this.queue, '', {}, {}, id);
    if (state === 'delayed') {
      try {
        await job.promote();
      } catch {
        return false; // no longer delayed: taken, or promoted by its own timer
      }
    }
    await job.changePriority({ priority: 0, lifo: true });
    return true;
  }

  /** A job by id, typed as one of this queue's (undefined when Redis no longer has it). */
  async getJob(id: string): Promise<JobOf<Q> | undefined> {
    return (await this.queue.getJob(id)) as JobOf<Q> | undefined;
  }
}

/**
 * The longest a fail-fast producer's command may go unanswered. Far above a healthy
 * `add` (milliseconds, even for a 5,000-event batch); only a command lost to a dropped
 * connection reaches it, and it then fails like one refused (the api answers 503).
 */
export const FAIL_FAST_COMMAND_TIMEOUT_MS = 10000;

export const producerToken = (queue: QueueName): string => `producer:${queue}`;

/** Injects the {@link Producer} of `queue` (registered with {@link ProducersModule.forQueues}). */
export const InjectProducer = (queue: QueueName): ParameterDecorator =>
  Inject(producerToken(queue));

export interface ProducerSpec {
  name: QueueName;
  /**
   * Fail at once while Redis is away instead of buffering in memory (no offline queue):
   * for producers that answer a request, which must not hang or grow.
   */
  failFast?: boolean;
}

/** Registers queues for producing and a typed {@link Producer} for each. */
@Module({})
export class ProducersModule {
  static forQueues(...specs: Array<QueueName | ProducerSpec>): DynamicModule {
    const all = specs.map((s) => (typeof s === 'string' ? { name: s } : s));
    const producers: Provider[] = all.map(({ name }) => ({
      provide: producerToken(name),
      useFactory: (queue: Queue) => new Producer(queue),
      inject: [getQueueToken(name)],
    }));
    return {
      module: ProducersModule,
      imports: all.map(({ name, failFast }) =>
        BullModule.registerQueueAsync({
          name,
          inject: [ConfigService],
          useFactory: (config: ConfigService<AppConfig, true>) => {
            const redis = config.get('redis', { infer: true });
            return {
              prefix: queuePrefix(redis, name),
              ...(failFast
                ? {
                    connection: {
                      ...redisOptionsFromUrl(redis.url),
                      enableOfflineQueue: false,
                      // An add the caller has given up on (and answered 503 for) is not
                      // sent again when the connection comes back...
                      autoResendUnfulfilledCommands: false,
                      // ...and ioredis then neither answers nor rejects it: without a
                      // deadline a command cut off by a reconnect would leave its caller
                      // waiting forever.
                      commandTimeout: FAIL_FAST_COMMAND_TIMEOUT_MS,
                    },
                  }
                : {}),
            };
          },
        }),
      ),
      providers: producers,
      exports: producers.map((p) => (p as { provide: string }).provide),
    };
  }
}
