/**
 * Every key pattern the project writes to Redis, with its hash-tag decision: on a Redis
 * Cluster the keys a script or a transaction uses together must hash to one slot, and
 * the rest should spread over the shards. A key that matches no pattern here fails the
 * cluster suite (test/integration/redis-cluster.int-spec.ts scans every node after the
 * pipeline ran), and a `key('<namespace>', …)` call whose namespace is not declared fails
 * `npm run lint` (scripts/check-architecture.js): a new key comes with its decision.
 *
 * `<prefix>` is REDIS_PREFIX; `{…}` a hash tag. Where `cluster` is given, the key is
 * named so only on a cluster (a single Redis keeps the names earlier versions wrote,
 * which api and worker replicas of two versions share during a rolling upgrade).
 */
export interface KeyPattern {
  /** The key on a single Redis. */
  single: string;
  /** The key on a cluster, when it differs. */
  cluster?: string;
  /** The lib that writes it. */
  owner: string;
  /** Which keys share its slot, and why that grouping. */
  slot: string;
}

export const KEY_SPACE: readonly KeyPattern[] = [
  {
    single: '<prefix>:bull:<queue>:<bullmq key>',
    cluster: '<prefix>:bull:{<queue>}:<queue>:<bullmq key>',
    owner: 'queue',
    slot:
      "a queue's keys together (BullMQ's scripts use several at once); each queue in a slot " +
      'of its own, so the four queues spread over the shards',
  },
  {
    single: '<prefix>:ingest:seq:<device>',
    cluster: '<prefix>:ingest:{<project>}:seq:<device>',
    owner: 'telemetry',
    slot: "with its project's backlog: one script numbers a batch and counts it against the share",
  },
  {
    single: '<prefix>:ingest:{<project>}:backlog',
    owner: 'telemetry',
    slot: "the project's: with its devices' counters; projects spread over the shards",
  },
  {
    single: '<prefix>:ingest:{<project>}:body:<batch>',
    owner: 'telemetry',
    slot:
      "the project's: the admission script stores a batch's body as it counts the batch, the " +
      'release script deletes it as it gives the place back',
  },
  {
    single: '<prefix>:ingest:backlog-bytes',
    owner: 'telemetry',
    slot: 'alone: a counter, changed by single commands',
  },
  {
    single: '<prefix>:ingest:backlogs',
    owner: 'telemetry',
    slot: 'alone: the set of projects with a backlog, changed by single commands',
  },
  {
    single: '<prefix>:ingest:backlog-audit',
    owner: 'telemetry',
    slot: "alone: the audit's lock (SET NX)",
  },
  {
    single: '<prefix>:ratelimit:ip:<ip>',
    owner: 'api',
    slot: 'alone: a single-key script per address',
  },
  {
    single: '{<prefix>:ratelimit:<bucket>:m}:<hits|blocked>',
    owner: 'api (@nest-lab/throttler-storage-redis)',
    slot: "the library's hit and block counters of one bucket together, tagged by the library",
  },
  {
    single: '<prefix>:circuit:<project>:<sha256 of url>',
    owner: 'webhooks',
    slot: 'alone: single-key scripts; circuits spread over the shards',
  },
  {
    single: '<prefix>:webhooks:{<project>}:in-flight',
    owner: 'webhooks',
    slot: "the project's: a single-key script leases the project's delivery slots",
  },
];

/** The first segment after `<prefix>:` of every declared key (what `key()` is called with). */
export const KEY_NAMESPACES: readonly string[] = [
  ...new Set(KEY_SPACE.map((k) => k.single.split(':')[1]).filter((s) => !s.startsWith('{'))),
];

/**
 * A matcher for the keys `pattern` describes under `prefix` (each `<…>` one or more
 * characters, anything else literal), in the given layout.
 */
export function keyPatternRegExp(pattern: KeyPattern, prefix: string, cluster: boolean): RegExp {
  const text = (cluster && pattern.cluster) || pattern.single;
  const source = text
    .split(/(<[^>]+>)/)
    .map((part) =>
      part === '<prefix>' ? escape(prefix) : part.startsWith('<') ? '.+' : escape(part),
    )
    .join('');
  return new RegExp(`^${source}$`);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The declared pattern a key matches, or undefined: a key nobody decided its slot for. */
export function declaredPatternOf(
  key: string,
  prefix: string,
  cluster: boolean,
): KeyPattern | undefined {
  return KEY_SPACE.find((p) => keyPatternRegExp(p, prefix, cluster).test(key));
}
