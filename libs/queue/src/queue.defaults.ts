import type { AppConfig } from '@app/config';
import type { DefaultJobOptions } from 'bullmq';

/**
 * Job defaults in one place. Retries back off exponentially with jitter; finished jobs
 * are trimmed by age and count so Redis does not grow without bound. Deduplication is
 * PostgreSQL's job (unique keys), never BullMQ job ids, which vanish with removeOnComplete.
 */
export function defaultJobOptions(queue: AppConfig['queue']): DefaultJobOptions {
  return {
    attempts: queue.attempts,
    backoff: { type: 'exponential', delay: queue.backoffMs, jitter: 0.5 },
    removeOnComplete: { age: 3600, count: 1000 },
    // Failed jobs are evidence: keep them a week so an operator can inspect and retry.
    removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
  };
}
