import { EnvSource, loadConfig } from '@app/config';
import { QUEUES, redisOptionsFromUrl } from '@app/queue';
import { testConfigOverrides } from '@app/testing';
import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WorkerModule } from '@worker/worker.module';
import { Queue } from 'bullmq';

export interface RunningWorker {
  app: INestApplicationContext;
  close(): Promise<void>;
}

/** The real worker module (every processor) in this process, on this run's database and Redis. */
export async function startWorker(overrides: EnvSource = {}): Promise<RunningWorker> {
  const config = loadConfig(testConfigOverrides(overrides));
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    logger: false,
    abortOnError: false,
  });
  await app.init();
  return { app, close: () => app.close() };
}

/** A handle on one of this run's queues, for waiting and inspection. */
export function openQueue(name: string, overrides: EnvSource = {}): Queue {
  const config = loadConfig(testConfigOverrides(overrides));
  return new Queue(name, {
    connection: redisOptionsFromUrl(config.redis.url),
    prefix: `${config.redis.prefix}:bull`,
  });
}

/** Waits until the queue has nothing waiting, delayed or active (instead of sleeping). */
export async function drained(queue: Queue, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(counts).every((n) => n === 0)) return;
    if (Date.now() > deadline) {
      const [stuck] = await queue.getJobs(['delayed', 'active', 'waiting'], 0, 0);
      throw new Error(
        `queue ${queue.name} not drained: ${JSON.stringify(counts)}; e.g. ${stuck?.id}: ${stuck?.failedReason ?? 'no error'}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const INGEST = QUEUES.TELEMETRY_INGEST;
