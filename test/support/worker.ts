import { AppConfig, AppConfigModule, EnvSource, loadConfig } from '@app/config';
import { ObservabilityModule } from '@app/observability';
import {
  QUEUES,
  QueueModule,
  queuePrefix,
  QueueWorkerModule,
  redisOptionsFromUrl,
} from '@app/queue';
import { RedisModule } from '@app/redis';
import { bootTestWorker, testConfigOverrides, TestWorker } from '@app/testing';
import { WorkerModule } from '@worker/worker.module';
import { Queue } from 'bullmq';
import { sleep } from './fixtures';

export type RunningWorker = TestWorker;

/** The real worker module (every processor) in this process, on this run's database and Redis. */
export function startWorker(overrides: EnvSource = {}): Promise<RunningWorker> {
  return bootTestWorker((config) => WorkerModule.forRoot(config), overrides);
}

/**
 * What a test module needs around queue consumers of its own (built with `consumerFor`):
 * configuration, metrics, Redis, BullMQ's shared connection and the outage wait.
 */
export const queueTestModules = (config: AppConfig) => [
  AppConfigModule.forRoot(config),
  ObservabilityModule,
  RedisModule,
  QueueModule,
  QueueWorkerModule,
];

/** A handle on one of this run's queues, for waiting and inspection. */
export function openQueue(name: string, overrides: EnvSource = {}): Queue {
  const config = loadConfig(testConfigOverrides(overrides));
  return new Queue(name, {
    connection: redisOptionsFromUrl(config.redis.url),
    prefix: queuePrefix(config.redis, name),
  });
}

/**
 * Waits until the queue has nothing waiting, delayed or active (instead of sleeping). A
 * reminder waiting for its due time (`alert-reminder`, delayed for as long as its alert
 * stays open) is not work left to do.
 */
export async function drained(queue: Queue, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (counts.delayed > 0 && queue.name === QUEUES.ALERT_EVENTS)
      counts.delayed = (await queue.getJobs(['delayed'])).filter(
        (j) => j && j.name !== 'alert-reminder',
      ).length;
    if (Object.values(counts).every((n) => n === 0)) return;
    if (Date.now() > deadline) {
      const [stuck] = await queue.getJobs(['delayed', 'active', 'waiting'], 0, 0);
      throw new Error(
        `queue ${queue.name} not drained: ${JSON.stringify(counts)}; e.g. ${stuck?.id}: ${stuck?.failedReason ?? 'no error'}`,
      );
    }
    await sleep(50);
  }
}

export const INGEST = QUEUES.TELEMETRY_INGEST;

/**
 * The queues from a batch to its alerts: ingestion, then the rule evaluations that
 * ingestion queues. `idle()` is what a test waits for after sending readings.
 */
export class Pipeline {
  readonly ingest: Queue;
  readonly evaluation: Queue;

  constructor(overrides: EnvSource = {}) {
    this.ingest = openQueue(INGEST, overrides);
    this.evaluation = openQueue(QUEUES.RULE_EVALUATION, overrides);
  }

  /**
   * Waits until ingestion, then evaluation, are drained (evaluation jobs are added by
   * ingestion); `passes` rounds of that, for suites that check once more.
   */
  async idle(passes = 1): Promise<void> {
    for (let i = 0; i < passes; i++) {
      await drained(this.ingest);
      await drained(this.evaluation);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.ingest.close(), this.evaluation.close()]);
  }
}
