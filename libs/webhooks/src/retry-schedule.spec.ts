import * as fc from 'fast-check';
import {
  classifyStatus,
  DEFAULT_RETRY_SCHEDULE_SECONDS,
  honoursRetryAfter,
  JITTER,
  parseRetryAfter,
  retryDelayMs,
  RETRY_AFTER_MAX_MS,
} from './retry-schedule';

describe('retry schedule', () => {
  it('makes 8 attempts over about 27.6 hours by default', () => {
    expect(DEFAULT_RETRY_SCHEDULE_SECONDS).toHaveLength(7);
    const total = DEFAULT_RETRY_SCHEDULE_SECONDS.reduce((a, b) => a + b, 0);
    expect(total / 3600).toBeCloseTo(27.6, 1);
  });

  it('gives the scheduled delay at the middle of the jitter and ends after the last', () => {
    const s = [5, 300];
    expect(retryDelayMs(s, 1, 0.5)).toBe(5000);
    expect(retryDelayMs(s, 2, 0.5)).toBe(300000);
    expect(retryDelayMs(s, 3, 0.5)).toBeNull();
    expect(retryDelayMs(s, 0, 0.5)).toBeNull();
  });

  it('stays within ±20% of the schedule and grows attempt over attempt (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: DEFAULT_RETRY_SCHEDULE_SECONDS.length }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r) => {
          const base = DEFAULT_RETRY_SCHEDULE_SECONDS[n - 1] * 1000;
          const d = retryDelayMs(DEFAULT_RETRY_SCHEDULE_SECONDS, n, r)!;
          expect(d).toBeGreaterThanOrEqual(Math.floor(base * (1 - JITTER)));
          expect(d).toBeLessThanOrEqual(Math.ceil(base * (1 + JITTER)));
        },
      ),
    );
  });

  it.each([
    ['120', 120000],
    [' 3 ', 3000],
    ['0', 1000],
    ['999999999', RETRY_AFTER_MAX_MS],
    ['Wed, 01 Jan 2025 00:01:00 GMT', 60000],
    ['Wed, 01 Jan 2025 00:00:00 GMT', 1000],
  ])('reads Retry-After %j as %d ms', (value, ms) => {
    expect(parseRetryAfter(value, Date.UTC(2025, 0, 1))).toBe(ms);
  });

  it.each([undefined, '', 'soon', '-5', '1.5', '2025-01-01'])('ignores Retry-After %j', (value) => {
    expect(parseRetryAfter(value, Date.UTC(2025, 0, 1))).toBeNull();
  });

  it.each([
    [200, 'succeeded'],
    [204, 'succeeded'],
    [299, 'succeeded'],
    [410, 'gone'],
    [301, 'retry'],
    [400, 'retry'],
    [404, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [null, 'retry'],
  ])('classifies %s as %s', (status, outcome) => {
    expect(classifyStatus(status)).toBe(outcome);
  });

  it('honours Retry-After on 429 and 503 only', () => {
    expect([429, 503].every(honoursRetryAfter)).toBe(true);
    expect([200, 500, 502, 410, null].some(honoursRetryAfter)).toBe(false);
  });
});
