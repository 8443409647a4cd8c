import { AppConfig } from '@app/config';
import { RedisService } from '@app/redis';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import {
  BreakerConfig,
  BreakerState,
  CircuitState,
  closedState,
  describe,
} from './circuit-breaker';

/** Circuits nobody touched for this long are forgotten (a fresh one is closed). */
const CIRCUIT_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * `decide` and `onSuccess`/`onFailure` of `circuit-breaker.ts`, run inside Redis so that
 * every worker sees one circuit per endpoint and exactly one of them gets the half-open
 * probe: a Lua script runs atomically, with nothing interleaved. The transitions must stay
 * identical to the pure module's; a differential test (`test/integration/circuit-breaker.int-spec.ts`)
 * runs random sequences through both and compares every state.
 *
 * Hash fields: s = state, f = consecutive failures, o = opened at (ms), p = probe started at (ms).
 */
const READ_STATE = `
-- Redis' clock unless the caller passes one (tests): workers' clocks may disagree.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'o', 'p')
local state = h[1] or 'closed'
local failures = tonumber(h[2]) or 0
local opened = tonumber(h[3])
local probe = tonumber(h[4])
`;

const WRITE_STATE = `
local function write(state, failures, opened, probe, ttl)
  if state == 'closed' and failures == 0 then
    redis.call('DEL', KEYS[1])
    return
  end
  redis.call('HSET', KEYS[1], 's', state, 'f', failures)
  if opened then redis.call('HSET', KEYS[1], 'o', opened) else redis.call('HDEL', KEYS[1], 'o') end
  if probe then redis.call('HSET', KEYS[1], 'p', probe) else redis.call('HDEL', KEYS[1], 'p') end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
`;

/** ARGV: now, recoveryMs, probeTimeoutMs, ttlMs → {action, retryAt, state, failures, opened, probe}. */
const DECIDE = `${READ_STATE}${WRITE_STATE}
local recovery = tonumber(ARGV[2])
local probeTimeout = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local function out(action, retryAt)
  return {action, retryAt, state, failures, opened or '', probe or ''}
end
if state == 'closed' then return out('attempt', 0) end
if state == 'open' then
  local retryAt = (opened or now) + recovery
  if now < retryAt then return out('wait', retryAt) end
  state = 'half_open'
  probe = now
  write(state, failures, opened, probe, ttl)
  return out('probe', 0)
end
if probe and now < probe + probeTimeout then return out('wait', probe + probeTimeout) end
probe = now
write(state, failures, opened, probe, ttl)
return out('probe', 0)
`;

/**
 * ARGV: now, ok (1|0), failureThreshold, ttlMs → {state, failures, opened, probe, previous}.
 * `previous` is the state this report found: exactly one report sees each transition.
 */
const REPORT = `${READ_STATE}${WRITE_STATE}
local threshold = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local previous = state
if ARGV[2] == '1' then
  state, failures, opened, probe = 'closed', 0, nil, nil
else
  failures = failures + 1
  if state == 'closed' then
    if failures >= threshold then state, opened, probe = 'open', now, nil end
  elseif state == 'half_open' then
    state, opened, probe = 'open', now, nil
  end
end
write(state, failures, opened, probe, ttl)
return {state, failures, opened or '', probe or '', previous}
`;

type BreakerRedis = Redis & {
  circuitDecide(key: string, ...args: Array<string | number>): Promise<Array<string | number>>;
  circuitReport(key: string, ...args: Array<string | number>): Promise<Array<string | number>>;
};

export type Gate =
  | { action: 'attempt' | 'probe'; state: BreakerState }
  | { action: 'wait'; retryAt: number; state: BreakerState };

const toState = (
  state: string | number,
  failures: string | number,
  opened: string | number,
  probe: string | number,
): BreakerState => ({
  state: String(state) as CircuitState,
  consecutiveFailures: Number(failures),
  openedAt: opened === '' ? null : Number(opened),
  probeStartedAt: probe === '' ? null : Number(probe),
});

/**
 * Which circuit: a project's view of an endpoint. Keyed by project as well as URL, so one
 * tenant's failures (or a URL registered to harm another tenant) never open, nor show in,
 * another tenant's circuit for the same endpoint.
 */
export interface CircuitId {
  projectId: string;
  url: string;
}

/** What a report left, and the state it found. */
export type ReportedState = BreakerState & { previous: CircuitState };

/** The shared, Redis-held circuit breaker: one circuit per project and endpoint URL. */
@Injectable()
export class CircuitBreakerService {
  private readonly redis: BreakerRedis;
  readonly config: BreakerConfig;

  constructor(
    private readonly redisService: RedisService,
    config: ConfigService<AppConfig, true>,
  ) {
    const webhooks = config.get('webhooks', { infer: true });
    this.config = {
      failureThreshold: webhooks.circuitFailureThreshold,
      recoveryMs: webhooks.circuitRecoverySeconds * 1000,
      // A probe is one attempt: it ends by its deadline, plus time to record it. A probe
      // whose worker died is given up after this and the next delivery probes instead.
      probeTimeoutMs: webhooks.timeoutMs + 5000,
    };
    // EVALSHA with a fallback to EVAL: the scripts survive a Redis restart or failover.
    const client = redisService.client;
    if (!('circuitDecide' in client)) {
      client.defineCommand('circuitDecide', { numberOfKeys: 1, lua: DECIDE });
      client.defineCommand('circuitReport', { numberOfKeys: 1, lua: REPORT });
    }
    this.redis = client as BreakerRedis;
  }

  /** Persisted in Redis: every webhook of the project with this URL shares the circuit. */
  key(circuit: CircuitId): string {
    return this.redisService.key(
      'circuit',
      circuit.projectId,
      createHash('sha256').update(circuit.url).digest('hex'),
    );
  }

  /** May a delivery go out now? `probe` is granted to exactly one caller at a time. */
  async decide(circuit: CircuitId, now?: number): Promise<Gate> {
    const [action, retryAt, s, f, o, p] = await this.redis.circuitDecide(
      this.key(circuit),
      now ?? '',
      this.config.recoveryMs,
      this.config.probeTimeoutMs,
      CIRCUIT_TTL_MS,
    );
    const state = toState(s, f, o, p);
    if (action === 'wait') return { action: 'wait', retryAt: Number(retryAt), state };
    return { action: action as 'attempt' | 'probe', state };
  }

  /**
   * Records an attempt's outcome; returns the state it left and the state it found (of
   * concurrent reports, exactly one sees a given transition, so it is told once).
   */
  async report(circuit: CircuitId, ok: boolean, now?: number): Promise<ReportedState> {
    const [s, f, o, p, previous] = await this.redis.circuitReport(
      this.key(circuit),
      now ?? '',
      ok ? 1 : 0,
      this.config.failureThreshold,
      CIRCUIT_TTL_MS,
    );
    return { ...toState(s, f, o, p), previous: String(previous) as CircuitState };
  }

  async read(circuit: CircuitId): Promise<BreakerState> {
    const h = await this.redis.hmget(this.key(circuit), 's', 'f', 'o', 'p');
    if (!h[0]) return closedState();
    return toState(h[0], h[1] ?? 0, h[2] ?? '', h[3] ?? '');
  }

  /** `GET /webhooks/{id}/circuit-status`. */
  async status(circuit: CircuitId): Promise<{
    state: CircuitState;
    consecutive_failures: number;
    opened_at: string | null;
    next_attempt_at: string | null;
  }> {
    const d = describe(this.config, await this.read(circuit));
    const iso = (ms: number | null): string | null =>
      ms === null ? null : new Date(ms).toISOString();
    return {
      state: d.state,
      consecutive_failures: d.consecutive_failures,
      opened_at: iso(d.opened_at),
      next_attempt_at: iso(d.next_attempt_at),
    };
  }
}
