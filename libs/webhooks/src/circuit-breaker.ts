/**
 * The circuit breaker's state machine, pure (no Redis, no clock): the Redis-backed
 * breaker shared by all workers (`CircuitBreakerService`) runs exactly these transitions
 * atomically, in Lua scripts; an integration test compares the two.
 *
 * closed ──(failureThreshold consecutive failures)──▶ open
 * open ──(recoveryMs elapsed; one caller gets the probe)──▶ half_open
 * half_open ──(probe succeeds)──▶ closed      half_open ──(probe fails)──▶ open
 *
 * While open, and while a probe is in flight, callers wait (deliveries are postponed to
 * `retryAt`, never dropped). A probe that never reports back (its worker died) is given
 * up after `probeTimeoutMs` and the next caller probes instead.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface BreakerConfig {
  failureThreshold: number;
  recoveryMs: number;
  probeTimeoutMs: number;
}

export interface BreakerState {
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: number | null;
  probeStartedAt: number | null;
}

export type Decision =
  | { action: 'attempt'; state: BreakerState }
  | { action: 'probe'; state: BreakerState }
  | { action: 'wait'; retryAt: number; state: BreakerState };

export const closedState = (): BreakerState => ({
  state: 'closed',
  consecutiveFailures: 0,
  openedAt: null,
  probeStartedAt: null,
});

/** May a delivery go out now? Exactly one caller gets `probe` per half-open period. */
export function decide(cfg: BreakerConfig, s: BreakerState, now: number): Decision {
  switch (s.state) {
    case 'closed':
      return { action: 'attempt', state: s };
    case 'open': {
      const retryAt = (s.openedAt ?? now) + cfg.recoveryMs;
      if (now < retryAt) return { action: 'wait', retryAt, state: s };
      return { action: 'probe', state: { ...s, state: 'half_open', probeStartedAt: now } };
    }
    case 'half_open': {
      const probeDeadline = (s.probeStartedAt ?? now) + cfg.probeTimeoutMs;
      if (s.probeStartedAt !== null && now < probeDeadline)
        return { action: 'wait', retryAt: probeDeadline, state: s };
      return { action: 'probe', state: { ...s, probeStartedAt: now } };
    }
  }
}

export function onSuccess(_cfg: BreakerConfig, _s: BreakerState): BreakerState {
  return closedState();
}

export function onFailure(cfg: BreakerConfig, s: BreakerState, now: number): BreakerState {
  const consecutiveFailures = s.consecutiveFailures + 1;
  switch (s.state) {
    case 'closed':
      return consecutiveFailures >= cfg.failureThreshold
        ? { state: 'open', consecutiveFailures, openedAt: now, probeStartedAt: null }
        : { ...s, consecutiveFailures };
    case 'half_open':
      // The probe failed: open again for a full recovery period.
      return { state: 'open', consecutiveFailures, openedAt: now, probeStartedAt: null };
    case 'open':
      // A failure of an attempt that started before the circuit opened: keep the period.
      return { ...s, consecutiveFailures };
  }
}

/**
 * What a report changed, worth a log line: `opened` (closed → open: the threshold was
 * reached), `reopened` (half_open → open: the probe failed), `closed` (the probe, or an
 * attempt still in flight when the circuit opened, succeeded). Null for no change of state
 * (a failure while open or counting towards the threshold, a success while closed).
 */
export type CircuitChange = 'opened' | 'reopened' | 'closed';

export function circuitChange(from: CircuitState, to: CircuitState): CircuitChange | null {
  if (from === to) return null;
  if (to === 'open') return from === 'half_open' ? 'reopened' : 'opened';
  return to === 'closed' ? 'closed' : null;
}

/** What `GET /webhooks/{id}/circuit-status` shows. */
export function describe(
  cfg: BreakerConfig,
  s: BreakerState,
): {
  state: CircuitState;
  consecutive_failures: number;
  opened_at: number | null;
  next_attempt_at: number | null;
} {
  return {
    state: s.state,
    consecutive_failures: s.consecutiveFailures,
    opened_at: s.openedAt,
    next_attempt_at:
      s.state === 'open'
        ? (s.openedAt ?? 0) + cfg.recoveryMs
        : s.state === 'half_open' && s.probeStartedAt !== null
          ? s.probeStartedAt + cfg.probeTimeoutMs
          : null,
  };
}

/**
 * What counts against an endpoint's circuit: no answer (timeout, connection error,
 * refusal), 5xx, 408 and 429. Any other answer, a 4xx included, means the endpoint is up:
 * one tenant's 401 (an old secret, say) must not cut off every tenant sharing the URL.
 * The delivery itself still fails and is retried; this is only the circuit's view.
 */
export function isEndpointFailure(statusCode: number | null): boolean {
  return statusCode === null || statusCode >= 500 || statusCode === 408 || statusCode === 429;
}
