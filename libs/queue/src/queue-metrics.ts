import { withDeadline } from '@app/common';
import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Queue } from 'bullmq';
import { QueueName } from './queue.constants';
import { QuietQueue } from './quiet-queue';
import { queuePrefix, redisOptionsFromUrl } from './redis-connection';

/** A scrape waits at most this long for Redis, then keeps the values it had. */
const SCRAPE_DEADLINE_MS = 2000;

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

/**
 * Queue depth for operators and autoscaling, read from Redis when Prometheus scrapes:
 * `queue_jobs{queue,state}` and `queue_oldest_waiting_age_seconds{queue}` for the queues
 * of this process's roles. Every replica of a role reports the same figures (they are the
 * queue's, not the process's): aggregate them with `max by (queue)`. A scrape while Redis
 * is away keeps the last values rather than holding `/metrics` up.
 */
@Injectable()
export class QueueMetrics implements BeforeApplicationShutdown {
  private readonly queues: Queue[];

  constructor(
    metrics: MetricsService,
    config: ConfigService<AppConfig, true>,
    names: readonly QueueName[],
  ) {
    const redis = config.get('redis', { infer: true });
    this.queues = names.map(
      (name) =>
        new QuietQueue(name, {
          connection: {
            ...redisOptionsFromUrl(redis.url),
            enableOfflineQueue: false,
            commandTimeout: SCRAPE_DEADLINE_MS,
          },
          prefix: queuePrefix(redis, name),
        }),
    );
    for (const q of this.queues) q.on('error', () => undefined); // reported by the probes
    const queues = this.queues;
    metrics.gauge(
      'queue_jobs',
      'jobs in each queue by state',
      ['queue', 'state'],
      async function () {
        await Promise.all(
          queues.map(async (q) => {
            const counts = await withDeadline(q.getJobCounts(...STATES), SCRAPE_DEADLINE_MS).catch(
              () => null,
            );
            if (counts)
              for (const s of STATES) this.set({ queue: q.name, state: s }, counts[s] ?? 0);
          }),
        );
      },
    );
    metrics.gauge(
      'queue_oldest_waiting_age_seconds',
      'age of the oldest job waiting in the queue (0 when none waits)',
      ['queue'],
      async function () {
        const now = Date.now();
        await Promise.all(
          queues.map(async (q) => {
            const jobs = await withDeadline(
              q.getJobs(['waiting'], 0, 0, true),
              SCRAPE_DEADLINE_MS,
            ).catch(() => null);
            if (!jobs) return;
            const oldest = jobs[0];
            this.set({ queue: q.name }, oldest ? Math.max(0, (now - oldest.timestamp) / 1000) : 0);
          }),
        );
      },
    );
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
