/**
 * The chaos soak's knobs (environment variables, see bench/soak.bench.ts) and the shape of
 * its workload: batches, the rule, the webhooks.
 */
import { QUEUES } from '@app/queue';
import { RuleSpec } from '@app/rules';
import { env, int } from './common';

export const SOAK_S = int('BENCH_SOAK_S', 600);
export const LOAD_FRACTION = Number(env.BENCH_LOAD_FRACTION ?? 0.7);
export const SAMPLE_S = 10;
export const WORKERS = int('BENCH_WORKERS', 2);
export const DEVICES = int('BENCH_DEVICES', 8);
export const CAPACITY_BATCHES = int('BENCH_CAPACITY_BATCHES', 40);
export const CAPACITY = env.BENCH_CAPACITY ? Number(env.BENCH_CAPACITY) : undefined;
export const WARMUP_S = int('BENCH_WARMUP_S', 20);
export const TAIL_S = int('BENCH_TAIL_S', 60);
export const PG_DOWN_MS = int('BENCH_PG_DOWN_MS', 3000);
export const REDIS_DOWN_MS = int('BENCH_REDIS_DOWN_MS', 3000);
export const DRAIN_S = int('BENCH_DRAIN_S', 300);
export const RSS_MAX_RATIO = Number(env.BENCH_RSS_MAX_RATIO ?? 1.5);
export const SEED = env.BENCH_SEED ? Number(env.BENCH_SEED) : Math.floor(Math.random() * 2 ** 31);
export const [GAP_MIN_S, GAP_MAX_S] = (env.BENCH_FAULT_EVERY_S ?? '30-60').split('-').map(Number);
export const FAULT_KINDS = (env.BENCH_FAULTS ?? 'worker,postgres,redis')
  .split(',')
  .map((k) => k.trim()) as FaultKind[];
export const STARTED_AT = new Date();
export const OUT =
  env.BENCH_OUT ?? `/tmp/soak-${STARTED_AT.toISOString().replace(/\D/g, '').slice(0, 14)}.json`;

export const EVENTS = 5000;
/** Every T_EVERY-th reading carries the rule's metric `t`; the others only other metrics. */
export const T_EVERY = 100;
/**
 * In every ALERT_EVERY-th batch of a device the readings [HOT_FROM, HOT_TO) of `t` are hot:
 * one alert opens and resolves. One project's deliveries go at most
 * WEBHOOK_PROJECT_CONCURRENCY (4) at a time: an alert in every batch would ask more of
 * that than a few loaded cores give, and measure the limit instead of the faults.
 */
export const ALERT_EVERY = int('BENCH_ALERT_EVERY', 5);
export const HOT_FROM = 2000;
export const HOT_TO = 2300;
export const RULE: RuleSpec = {
  metric: 't',
  operator: '>',
  threshold: 5,
  windowN: 3,
  requiredK: 2,
  cooldownSeconds: 0,
};
export const WEBHOOKS = ['/hooks/a', '/hooks/b'];
export const T0 = Date.UTC(2025, 0, 1);
export const ADMIN_TOKEN = 'soak-admin-token-0123456789abcdef';
export const REDIS_PREFIX = 'soak';
export const ALL_QUEUES = Object.values(QUEUES);

export type FaultKind = 'worker' | 'postgres' | 'redis';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();
