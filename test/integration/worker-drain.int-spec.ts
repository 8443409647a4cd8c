import { AppConfig, loadConfig } from '@app/config';
import {
  consumerFor,
  JobHandlers,
  QueueHandlerClass,
  QueueName,
  redisOptionsFromUrl,
} from '@app/queue';
import { testConfigOverrides } from '@app/testing';
import { BullModule, InjectQueue } from '@nestjs/bullmq';
import { DynamicModule, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Job, Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { queueTestModules } from '../support/worker';

const SLOW = `drain-slow-${randomUUID().slice(0, 8)}`;
const FOLLOW_UP = `drain-next-${randomUUID().slice(0, 8)}`;

/** A handler of a queue of this test's own (outside the job union, hence the casts). */
@Injectable()
class SlowHandler {
  static readonly queue = SLOW as QueueName;
  static started?: () => void;
  constructor(@InjectQueue(FOLLOW_UP) private readonly next: Queue) {}
  readonly jobs = {
    slow: async (job: Job<{ n: number }>) => {
      SlowHandler.started?.();
      await new Promise((r) => setTimeout(r, 800));
      // The follow-up is enqueued after shutdown began: its queue must still be open.
      await this.next.add('next', { n: job.data.n });
    },
  } as unknown as JobHandlers<QueueName>;
}

@Module({})
class DrainTestModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: DrainTestModule,
      imports: [
        ...queueTestModules(config),
        BullModule.registerQueue({ name: SLOW }, { name: FOLLOW_UP }),
      ],
      providers: [
        SlowHandler,
        consumerFor(SlowHandler as QueueHandlerClass, {
          concurrency: 1,
          lockDurationMs: 30000,
          prefix: `${config.redis.prefix}:bull`,
          connection: redisOptionsFromUrl(config.redis.url),
        }),
      ],
    };
  }
}

/**
 * @nestjs/bullmq closes queues before @Processor workers. The consumer host closes the
 * worker first, so a job in flight at SIGTERM completes and its follow-up is enqueued.
 */
describe('graceful worker shutdown (integration)', () => {
  it('finishes the job in flight and enqueues its follow-up while closing', async () => {
    const config = loadConfig(testConfigOverrides());
    const app = await NestFactory.createApplicationContext(DrainTestModule.forRoot(config), {
      logger: false,
    });
    await app.init();
    const producer = new Queue(SLOW, {
      connection: { url: config.redis.url },
      prefix: `${config.redis.prefix}:bull`,
    });
    const followUps = new Queue(FOLLOW_UP, {
      connection: { url: config.redis.url },
      prefix: `${config.redis.prefix}:bull`,
    });
    try {
      const started = new Promise<void>((resolve) => (SlowHandler.started = resolve));
      const job = await producer.add('slow', { n: 7 });
      await started;
      await app.close(); // what enableShutdownHooks does on SIGTERM

      expect(await job.getState()).toBe('completed');
      const next = await followUps.getJobs(['waiting']);
      expect(next.map((j) => j.data)).toEqual([{ n: 7 }]);
    } finally {
      await producer.obliterate({ force: true });
      await followUps.obliterate({ force: true });
      await Promise.all([producer.close(), followUps.close()]);
    }
  });
});
