import fc from 'fast-check';
import {
  BreakerState,
  circuitChange,
  closedState,
  decide,
  describe as describeState,
  isEndpointFailure,
  onFailure,
  onSuccess,
} from './circuit-breaker';

const cfg = { failureThreshold: 5, recoveryMs: 60000, probeTimeoutMs: 10000 };

function failTimes(n: number, start = closedState(), now = 0): BreakerState {
  let s = start;
  for (let i = 0; i < n; i++) s = onFailure(cfg, s, now);
  return s;
}

describe('circuit breaker state machine', () => {
  it('stays closed below the threshold and lets every delivery through', () => {
    const s = failTimes(4);
    expect(s).toMatchObject({ state: 'closed', consecutiveFailures: 4 });
    expect(decide(cfg, s, 0).action).toBe('attempt');
  });

  it('opens at exactly the threshold', () => {
    expect(failTimes(5, closedState(), 1000)).toEqual({
      state: 'open',
      consecutiveFailures: 5,
      openedAt: 1000,
      probeStartedAt: null,
    });
  });

  it('a success resets the count', () => {
    expect(onSuccess(cfg, failTimes(4))).toEqual(closedState());
    expect(failTimes(4, onSuccess(cfg, failTimes(4))).state).toBe('closed');
  });

  it('while open, deliveries wait until the recovery time, then one probe goes out', () => {
    const open = failTimes(5, closedState(), 1000);
    expect(decide(cfg, open, 1000 + 59999)).toMatchObject({ action: 'wait', retryAt: 61000 });
    const probe = decide(cfg, open, 61000);
    expect(probe).toMatchObject({
      action: 'probe',
      state: { state: 'half_open', probeStartedAt: 61000 },
    });
    // Everyone else waits while the probe is in flight.
    expect(decide(cfg, probe.state, 61001)).toMatchObject({ action: 'wait', retryAt: 71000 });
  });

  it('a successful probe closes; a failed one re-opens for a full period', () => {
    const half = decide(cfg, failTimes(5), 60000).state;
    expect(onSuccess(cfg, half)).toEqual(closedState());
    const reopened = onFailure(cfg, half, 65000);
    expect(reopened).toMatchObject({ state: 'open', openedAt: 65000, consecutiveFailures: 6 });
    expect(decide(cfg, reopened, 65000 + 59999).action).toBe('wait');
    expect(decide(cfg, reopened, 125000).action).toBe('probe');
  });

  it('a probe that never reports back is replaced after its timeout', () => {
    const half = decide(cfg, failTimes(5), 60000).state;
    expect(decide(cfg, half, 69999).action).toBe('wait');
    expect(decide(cfg, half, 70000)).toMatchObject({
      action: 'probe',
      state: { probeStartedAt: 70000 },
    });
  });

  it('a late failure while open keeps the recovery period', () => {
    const open = failTimes(5, closedState(), 1000);
    expect(onFailure(cfg, open, 30000)).toMatchObject({
      state: 'open',
      openedAt: 1000,
      consecutiveFailures: 6,
    });
  });

  it('describes itself for the circuit-status endpoint', () => {
    expect(describeState(cfg, closedState())).toEqual({
      state: 'closed',
      consecutive_failures: 0,
      opened_at: null,
      next_attempt_at: null,
    });
    expect(describeState(cfg, failTimes(5, closedState(), 1000))).toEqual({
      state: 'open',
      consecutive_failures: 5,
      opened_at: 1000,
      next_attempt_at: 61000,
    });
  });

  it('property: a second probe is granted only after the first reported back or timed out', () => {
    // Small numbers so random runs reach half_open often.
    const cfg = { failureThreshold: 2, recoveryMs: 5000, probeTimeoutMs: 3000 };
    const op = fc.record({
      kind: fc.constantFrom<'decide' | 'success' | 'failure'>(
        'decide',
        'decide',
        'success',
        'failure',
      ),
      dt: fc.integer({ min: 0, max: 4000 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        let s = closedState();
        let now = 0;
        let probeOutAt: number | null = null; // a probe granted and not yet reported
        for (const { kind, dt } of ops) {
          now += dt;
          if (kind === 'decide') {
            const d = decide(cfg, s, now);
            s = d.state;
            if (d.action === 'probe') {
              if (probeOutAt !== null && now < probeOutAt + cfg.probeTimeoutMs) return false;
              probeOutAt = now;
            }
            if (d.action === 'wait' && d.retryAt <= now) return false;
            if (d.action === 'attempt' && s.state !== 'closed') return false;
          } else {
            s = kind === 'success' ? onSuccess(cfg, s) : onFailure(cfg, s, now);
            if (s.state !== 'half_open') probeOutAt = null;
          }
          if (s.state === 'open' && s.consecutiveFailures < cfg.failureThreshold) return false;
        }
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});

describe('isEndpointFailure', () => {
  it.each([
    [null, true],
    [500, true],
    [502, true],
    [503, true],
    [599, true],
    [408, true],
    [429, true],
    [200, false],
    [204, false],
    [301, false],
    [400, false],
    [401, false],
    [404, false],
    [410, false],
  ])('status %s counts against the circuit: %s', (status, failure) => {
    expect(isEndpointFailure(status)).toBe(failure);
  });
});

describe('circuitChange', () => {
  it.each([
    ['closed', 'open', 'opened'],
    ['half_open', 'open', 'reopened'],
    ['half_open', 'closed', 'closed'],
    ['open', 'closed', 'closed'],
    ['closed', 'closed', null],
    ['open', 'open', null],
    ['open', 'half_open', null],
  ] as const)('%s → %s: %s', (from, to, change) => {
    expect(circuitChange(from, to)).toBe(change);
  });
});
