/**
 * What a worker process can be asked to do (WORKER_QUEUES): each role is one queue's
 * consumer plus the periodic duties that go with it.
 *
 * - `ingest`: stores batches (`telemetry-ingest`) and evaluates each in the same
 *   transaction when it can; audits the ingest backlog once a minute (one process at a
 *   time, by a Redis lock).
 * - `evaluate`: the `rule-evaluation` jobs, for the batches `ingest` could not evaluate
 *   where it stored them (another transaction held the device, older readings waited);
 *   scans the offline rules every OFFLINE_SCAN_INTERVAL_MS.
 * - `alert-events`: fans alert events out to webhook deliveries (`alert-events`, which
 *   also carries the due `alert.reminder` jobs); sweeps the outbox every second for events
 *   nobody handed on (api acks and resolves, a crash between commit and enqueue); releases
 *   ended silences every 2 s; re-schedules lost reminders every minute.
 * - `deliver`: sends webhooks (`webhook-delivery`), sweeps overdue deliveries every 30 s,
 *   and seals webhook secrets at boot.
 */
export const WORKER_ROLES = ['ingest', 'evaluate', 'alert-events', 'deliver'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

const ROLE_OR_ALL = `(?:all|${WORKER_ROLES.join('|')})`;
export const WORKER_QUEUES_RE = new RegExp(`^\\s*${ROLE_OR_ALL}\\s*(?:,\\s*${ROLE_OR_ALL}\\s*)*$`);

/** WORKER_QUEUES as roles, each once, in the order of {@link WORKER_ROLES}. */
export function parseWorkerRoles(value: string): WorkerRole[] {
  const named = new Set(value.split(',').map((r) => r.trim()));
  return named.has('all') ? [...WORKER_ROLES] : WORKER_ROLES.filter((r) => named.has(r));
}
