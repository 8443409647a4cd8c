import Redis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { clearSocketTimeoutOnClose } from './socket-timeout';

/** A client of either kind: the commands we use are the same on both. */
export type RedisClient = Redis | Cluster;

export interface RedisNode {
  host: string;
  port: number;
}

/** What `REDIS_URL` names: one Redis, or the seed nodes of a Redis Cluster. */
export interface RedisTarget {
  cluster: boolean;
  /** One node for a single Redis; the seed nodes (any of the cluster's) for a cluster. */
  nodes: RedisNode[];
  /** Every node's connection options: credentials, TLS, database (single Redis only). */
  node: RedisOptions;
}

const CLUSTER_SCHEMES = new Set(['redis+cluster:', 'rediss+cluster:']);
const SINGLE_SCHEMES = new Set(['redis:', 'rediss:']);

/**
 * Parses `REDIS_URL`: `redis://` / `rediss://` (one Redis, `/<db>` allowed), or
 * `redis+cluster://` / `rediss+cluster://` with comma-separated `host:port` seed nodes
 * (a cluster has only database 0). Credentials are the URL's, percent-decoded.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z+]+:)\/\//i.exec(url)?.[1]?.toLowerCase() ?? '';
  if (/[?#]/.test(url)) throw new Error('REDIS_URL: no query string or fragment is read');
  const cluster = CLUSTER_SCHEMES.has(scheme);
  if (!cluster && !SINGLE_SCHEMES.has(scheme))
    throw new Error(`REDIS_URL: unsupported scheme "${scheme}"`);
  const rest = url.slice(scheme.length + 2);
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const [hosts, path = ''] = splitOnce(at >= 0 ? rest.slice(at + 1) : rest, '/');
  const [user, password] = auth ? splitOnce(auth, ':') : ['', undefined];
  const nodes = hosts.split(',').map(parseNode);
  if (nodes.length === 0 || nodes.some((n) => !n.host)) throw new Error('REDIS_URL: no host given');
  if (!cluster && nodes.length > 1)
    throw new Error('REDIS_URL: several hosts need redis+cluster:// (or rediss+cluster://)');
  const db = path.replace(/\/$/, '');
  if (db && (cluster || !/^\d+$/.test(db)))
    throw new Error(
      `REDIS_URL: "/${db}" is not a database number${cluster ? ' a cluster has' : ''}`,
    );
  return {
    cluster,
    nodes,
    node: {
      username: user ? decodeURIComponent(user) : undefined,
      password: password ? decodeURIComponent(password) : undefined,
      db: db ? Number(db) : undefined,
      tls: scheme.startsWith('rediss') ? {} : undefined,
    },
  };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function parseNode(hostPort: string): RedisNode {
  const m = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostPort.trim());
  if (!m) throw new Error(`REDIS_URL: "${hostPort}" is not host:port`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 6379 };
}

/** Options that belong to the cluster client rather than to each node's connection. */
const CLUSTER_LEVEL = [
  'enableOfflineQueue',
  'lazyConnect',
  'enableReadyCheck',
  'retryStrategy',
] as const;

/**
 * A client for `target` with `options` (ioredis' single-node options). For a cluster they
 * go to every node's connection, except those that are the cluster client's own (offline
 * queue, lazy connect, the reconnect strategy). TLS clusters keep the nodes' names as
 * announced (ElastiCache and Memorystore certificates are for the names, not addresses).
 */
export function createRedisClient(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  clearSocketTimeoutOnClose();
  const merged: RedisOptions = { ...target.node, ...options };
  if (!target.cluster) return new Redis({ ...merged, ...target.nodes[0] });
  const node: RedisOptions = { ...merged };
  for (const k of CLUSTER_LEVEL) delete node[k];
  const clusterOptions: ClusterOptions = {
    redisOptions: node,
    enableOfflineQueue: merged.enableOfflineQueue ?? true,
    lazyConnect: merged.lazyConnect ?? false,
    enableReadyCheck: merged.enableReadyCheck ?? true,
    clusterRetryStrategy: merged.retryStrategy
      ? (times) => merged.retryStrategy?.(times) ?? null
      : undefined,
    // A failover moves slots: refresh the map (allowing a busy node 2 s) and follow
    // MOVED/ASK without failing the command.
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    slotsRefreshTimeout: 2000,
    ...(target.node.tls ? { dnsLookup: (address, lookup) => lookup(null, address) } : {}),
  };
  return new Cluster(target.nodes, clusterOptions);
}

/**
 * Every master's connection: SCAN and other node-local commands must visit each of them
 * on a cluster; on a single Redis this is the client itself. Throws while a cluster is
 * not ready (it knows none or only some of its masters then), as a command would.
 */
function masters(client: RedisClient): Redis[] {
  if (!(client instanceof Cluster)) return [client];
  if (client.status !== 'ready') throw new Error(`Cluster isn't ready (${client.status})`);
  return client.nodes('master');
}

/**
 * The keys matching `match`, one SCAN batch at a time with the master holding them, on
 * every master of a cluster (each holds its own slots). Throws while a cluster is not
 * ready ({@link masters}).
 */
export async function* scanKeys(
  client: RedisClient,
  match: string,
): AsyncGenerator<{ node: Redis; keys: string[] }> {
  for (const node of masters(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      yield { node, keys };
    } while (cursor !== '0');
  }
}

/**
 * Once the client has been ready, makes it refuse commands while it is not connected
 * instead of queueing them. Until then it queues (start-up may come before Redis).
 *
 * A single Redis client with `maxRetriesPerRequest: 1` queued a command issued while it
 * reconnects until its next attempt had failed: 200 ms after a drop, and up to its 2 s
 * cap later on. A cluster client queued it whatever its nodes' limits. Either way a
 * caller with a deadline of its own (a request, a probe) must hear that Redis is away,
 * not wait for it. Commands already sent when the connection drops are another matter:
 * they are resent on the next connection, or fail when it cannot be made.
 */
export function failFastOnceReady(client: RedisClient): void {
  client.once('ready', () => (client.options.enableOfflineQueue = false));
}
