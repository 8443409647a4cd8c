/**
 * When a failed delivery is tried again, pure (the caller passes the clock and the dice).
 *
 * The schedule is a list of delays, one per retry, each jittered by ±20% so deliveries
 * that failed together (an endpoint outage) don't come back as a herd. The default,
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, makes 8 attempts spread over about 27.6 hours
 * (Svix's schedule), long enough to ride out a subscriber's bad day, short enough that an
 * event still means something when it lands. A receiver's `Retry-After` (on 429 and 503)
 * replaces the scheduled delay, within [1 s, 24 h].
 */
export const DEFAULT_RETRY_SCHEDULE_SECONDS = [5, 300, 1800, 7200, 18000, 36000, 36000];

export const JITTER = 0.2;
export const RETRY_AFTER_MIN_MS = 1000;
export const RETRY_AFTER_MAX_MS = 24 * 3600 * 1000;

/**
 * Delay before the next attempt after `failedAttempts` failures in this run of the
 * schedule, or null when the schedule is used up (the delivery has failed).
 * `random` is in [0, 1).
 */
export function retryDelayMs(
  scheduleSeconds: readonly number[],
  failedAttempts: number,
  random: number,
): number | null {
  if (failedAttempts < 1 || failedAttempts > scheduleSeconds.length) return null;
  const base = scheduleSeconds[failedAttempts - 1] * 1000;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random));
}

/**
 * `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date, clamped to
 * [1 s, 24 h]. Null when absent or unparseable (then the schedule applies).
 */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!/[a-z]/i.test(v) || Number.isNaN(at)) return null;
    ms = at - now;
  }
  return Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, ms));
}

export type AttemptOutcome =
  /** 2xx: delivered. */
  | 'succeeded'
  /** 410 Gone: the subscriber asked us to stop; the webhook is disabled. */
  | 'gone'
  /** Anything else: retried on the schedule (or after `Retry-After`). */
  | 'retry';

export function classifyStatus(statusCode: number | null): AttemptOutcome {
  if (statusCode === null) return 'retry';
  if (statusCode >= 200 && statusCode < 300) return 'succeeded';
  if (statusCode === 410) return 'gone';
  return 'retry';
}

/** Only 429 and 503 carry a `Retry-After` we honour (the meaning RFC 9110 gives it). */
export const honoursRetryAfter = (statusCode: number | null): boolean =>
  statusCode === 429 || statusCode === 503;
