/**
 * What kind of failure an error is, so each is handled the way it deserves (pure: no I/O).
 *
 * - `outage`: PostgreSQL or Redis unreachable, restarting, failing over, out of
 *   connections or memory. Nothing is wrong with the work itself: wait for the dependency
 *   and do it again, as often as it takes, without using up a job's attempts.
 * - `transient`: a serialization failure or deadlock (40001, 40P01). Do it again now.
 * - `data`: the database refused a value (SQLSTATE class 22, a NOT NULL or CHECK
 *   violation, a program limit such as an oversized row). Doing it again fails the same
 *   way: the value has to be set aside (quarantined), never retried forever. A `telemetry`
 *   reading whose `ts` no partition takes is a CHECK violation (23514) too.
 * - `unknown`: anything else, our bugs included. Retried a bounded number of times.
 */
export type FailureKind = 'outage' | 'transient' | 'data' | 'unknown';

/** SQLSTATEs of a server going away or refusing service (besides class 08). */
const PG_OUTAGE = new Set([
  '57P01', // admin_shutdown (a restart, a failover)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '57P05', // idle_session_timeout: the connection is gone
  '25006', // read_only_sql_transaction: a standby that has not been promoted yet
]);

const NODE_OUTAGE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNABORTED',
]);

/**
 * Messages of pg, pg-pool, TypeORM, ioredis and BullMQ when a connection is lost or can't
 * be had; they carry no code.
 */
const OUTAGE_MESSAGE = new RegExp(
  [
    'Connection terminated',
    'timeout exceeded when trying to connect',
    'is not queryable',
    'Client was closed',
    'Query read timeout',
    'Connection is closed',
    'Reached the max retries per request limit',
    "Stream isn't writeable",
    // A Redis Cluster reconnecting, or none of its nodes answering.
    "Cluster isn't ready",
    'Failed to refresh slots cache',
    'None of startup nodes is available',
    'Command timed out',
    'Socket timeout',
    'sent nothing for',
    'connect ECONNREFUSED',
    'read ECONNRESET',
    'write EPIPE',
    // Redis answers of a server that can't serve writes right now.
    '^READONLY ',
    '^LOADING ',
    '^MASTERDOWN ',
    '^CLUSTERDOWN ',
    '^TRYAGAIN ',
    '^OOM ',
    '^BUSY ',
  ].join('|'),
);

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; driverError?: { code?: unknown }; errno?: unknown };
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === 'string' ? code : '';
}

function messagesOf(err: unknown): string[] {
  const out: string[] = [];
  let e = err as { message?: unknown; cause?: unknown; driverError?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.message === 'string') out.push(e.message);
    e = (e.driverError ?? e.cause) as typeof e;
  }
  return out;
}

/** The {@link FailureKind} of an error from PostgreSQL (pg, TypeORM), Redis (ioredis) or BullMQ. */
export function classifyFailure(err: unknown): FailureKind {
  const code = codeOf(err);
  if (sqlState(err) !== undefined) {
    if (code.startsWith('08') || code.startsWith('53') || PG_OUTAGE.has(code)) return 'outage';
    if (code === '40001' || code === '40P01') return 'transient';
    if (code.startsWith('22') || code === '23502' || code === '23514' || code.startsWith('54'))
      return 'data';
  }
  if (NODE_OUTAGE.has(code)) return 'outage';
  if (messagesOf(err).some((m) => OUTAGE_MESSAGE.test(m))) return 'outage';
  return 'unknown';
}

/** SQLSTATE of a PostgreSQL error (through TypeORM's wrapper too), or undefined. */
export function sqlState(err: unknown): string | undefined {
  const code = codeOf(err);
  // Node's codes (EPIPE) have the same shape; no SQLSTATE class starts with E.
  return /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined;
}
