import { loadConfig } from '@app/config';
import { RedisService } from '@app/redis';
import { testConfigOverrides, testRunEnv } from '@app/testing';
import {
  BreakerState,
  CircuitBreakerService,
  circuitChange,
  closedState,
  decide,
  onFailure,
  onSuccess,
} from '@app/webhooks';
import { ConfigService } from '@nestjs/config';
import * as fc from 'fast-check';

/**
 * The Redis breaker against real Redis: its Lua scripts must make exactly the pure state
 * machine's transitions (a differential property), and of many workers asking at once in
 * a half-open period exactly one may probe.
 */
describe('Redis circuit breaker (integration)', () => {
  const services: Array<{ redis: RedisService; breaker: CircuitBreakerService }> = [];
  let n = 0;

  /** A "worker": its own Redis connection and breaker, over the same namespace. */
  function worker(threshold = 5, recoverySeconds = 60): CircuitBreakerService {
    const config = new ConfigService(
      loadConfig(
        testConfigOverrides({
          REDIS_PREFIX: `${testRunEnv().redisPrefix}:breaker`,
          WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: String(threshold),
          WEBHOOK_CIRCUIT_RECOVERY_SECONDS: String(recoverySeconds),
        }),
      ),
    );
    const redis = new RedisService(config as never);
    const breaker = new CircuitBreakerService(redis, config as never);
    services.push({ redis, breaker });
    return breaker;
  }
  const url = () => `https://hooks.example.com/${process.pid}/${++n}`;
  const circuit = (projectId = 'project-a') => ({ projectId, url: url() });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.redis.onApplicationShutdown()));
  });

  it('makes the same transitions as the pure state machine (differential property)', async () => {
    const breaker = worker(3, 10);
    const cfg = breaker.config;
    type Op = { kind: 'decide' | 'success' | 'failure'; dt: number };
    // Failures and asks outnumber successes, and times cluster on the recovery and probe
    // boundaries, so runs reach half-open (and what follows it) often.
    const op = fc.record({
      kind: fc.oneof(
        { arbitrary: fc.constant<Op['kind']>('failure'), weight: 4 },
        { arbitrary: fc.constant<Op['kind']>('decide'), weight: 4 },
        { arbitrary: fc.constant<Op['kind']>('success'), weight: 1 },
      ),
      dt: fc.oneof(
        fc.constantFrom(0, 1, cfg.recoveryMs - 1, cfg.recoveryMs, cfg.probeTimeoutMs),
        fc.integer({ min: 0, max: 2 * cfg.recoveryMs }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const target = circuit();
        let pure: BreakerState = closedState();
        let now = 1_700_000_000_000;
        for (const o of ops) {
          now += o.dt;
          if (o.kind === 'decide') {
            const expected = decide(cfg, pure, now);
            const got = await breaker.decide(target, now);
            expect(got.action).toBe(expected.action);
            if (expected.action === 'wait' && got.action === 'wait')
              expect(got.retryAt).toBe(expected.retryAt);
            pure = expected.state;
          } else if (o.kind === 'success') {
            pure = onSuccess(cfg, pure);
            await breaker.report(target, true, now);
          } else {
            pure = onFailure(cfg, pure, now);
            await breaker.report(target, false, now);
          }
          expect(await breaker.read(target)).toEqual(pure);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('grants one half-open probe among many workers asking at once', async () => {
    const breakers = [worker(), worker(), worker()];
    const target = circuit();
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 5; i++) await breakers[i % 3].report(target, false, t0);
    expect((await breakers[0].read(target)).state).toBe('open');

    // Before the recovery time: everyone waits.
    const early = await Promise.all(
      breakers.flatMap((b) => Array.from({ length: 10 }, () => b.decide(target, t0 + 59_999))),
    );
    expect(early.every((g) => g.action === 'wait')).toBe(true);

    // After it: 30 concurrent asks from 3 connections, exactly one probe.
    const after = await Promise.all(
      breakers.flatMap((b) => Array.from({ length: 10 }, () => b.decide(target, t0 + 60_000))),
    );
    expect(after.filter((g) => g.action === 'probe')).toHaveLength(1);
    expect(after.filter((g) => g.action === 'wait')).toHaveLength(29);

    // The probe fails: open again for a full period from then.
    await breakers[1].report(target, false, t0 + 61_000);
    const reopened = await breakers[2].decide(target, t0 + 100_000);
    expect(reopened).toMatchObject({ action: 'wait', retryAt: t0 + 121_000 });

    // The next probe succeeds: closed, every worker attempts freely.
    expect((await breakers[2].decide(target, t0 + 121_000)).action).toBe('probe');
    await breakers[2].report(target, true, t0 + 121_500);
    const closed = await Promise.all(breakers.map((b) => b.decide(target, t0 + 121_600)));
    expect(closed.every((g) => g.action === 'attempt')).toBe(true);
    expect(await breakers[0].status(target)).toEqual({
      state: 'closed',
      consecutive_failures: 0,
      opened_at: null,
      next_attempt_at: null,
    });
  });

  it('tells exactly one of many concurrent reports that it opened the circuit', async () => {
    const breakers = [worker(3, 60), worker(3, 60), worker(3, 60)];
    const target = circuit();
    const t0 = Date.UTC(2026, 0, 2);
    // 30 failures at once, over three connections: one of them crosses the threshold.
    const reports = await Promise.all(
      Array.from({ length: 30 }, (_, i) => breakers[i % 3].report(target, false, t0)),
    );
    const opened = reports.filter((r) => circuitChange(r.previous, r.state) === 'opened');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ previous: 'closed', state: 'open', consecutiveFailures: 3 });
    expect(reports.filter((r) => r.previous === 'open')).toHaveLength(27);

    // The probe fails (reopened), the next one succeeds (closed): each told once.
    expect((await breakers[0].decide(target, t0 + 60_000)).action).toBe('probe');
    const failedProbe = await breakers[1].report(target, false, t0 + 60_500);
    expect(circuitChange(failedProbe.previous, failedProbe.state)).toBe('reopened');
    expect((await breakers[2].decide(target, t0 + 120_500)).action).toBe('probe');
    const [good, late] = await Promise.all([
      breakers[2].report(target, true, t0 + 121_000),
      breakers[0].report(target, true, t0 + 121_000),
    ]);
    expect([good, late].map((r) => circuitChange(r.previous, r.state)).sort()).toEqual([
      'closed',
      null,
    ]);
  });

  it("keeps one circuit per project and URL: another project's failures neither open nor show in it", async () => {
    const breaker = worker(2, 30);
    const a = circuit('project-a');
    const b = circuit('project-a');
    const sameUrlOtherProject = { projectId: 'project-b', url: a.url };
    const t0 = Date.UTC(2026, 0, 1);
    await breaker.report(a, false, t0);
    await breaker.report(a, false, t0);
    expect(await breaker.status(a)).toEqual({
      state: 'open',
      consecutive_failures: 2,
      opened_at: new Date(t0).toISOString(),
      next_attempt_at: new Date(t0 + 30_000).toISOString(),
    });
    expect((await breaker.status(b)).state).toBe('closed');
    expect(await breaker.status(sameUrlOtherProject)).toEqual({
      state: 'closed',
      consecutive_failures: 0,
      opened_at: null,
      next_attempt_at: null,
    });
    expect((await breaker.decide(sameUrlOtherProject, t0 + 1)).action).toBe('attempt');
  });
});
