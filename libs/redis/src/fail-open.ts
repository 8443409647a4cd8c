import { withDeadline } from '@app/common';

/**
 * How long a check that fails open waits for Redis: the rate limit's count, the sampled
 * backlog check. Once connected, our clients refuse commands at once while Redis is away
 * ({@link failFastOnceReady}), but a Redis that is silent (partitioned, stalled) holds
 * each command for its 2 s timeout, and a request makes several before its enqueue,
 * whose own deadline then answers 503. Past this, the check is skipped as on an error.
 */
export const FAIL_OPEN_DEADLINE_MS = 250;

/** `check`'s answer from Redis, or a rejection after {@link FAIL_OPEN_DEADLINE_MS}. */
export const failOpenWithin = <T>(check: Promise<T>): Promise<T> =>
  withDeadline(check, FAIL_OPEN_DEADLINE_MS, 'no answer from Redis');
