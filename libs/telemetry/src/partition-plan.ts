import type { PartitionInterval } from '@app/config';

/**
 * Which `telemetry` partitions to create and drop, pure (no Nest, no I/O): the maintenance
 * duty ({@link PartitionMaintenance}) reads the partitions, asks this, and runs the DDL.
 * Bounds are UTC instants; partitions never overlap and new ones only extend the range
 * covered, at either end.
 */

export const DAY_MS = 86400000;

/**
 * Partitions exist at least this far ahead of now. The api takes readings up to
 * {@link MAX_FUTURE_MS} ahead, so a duty that stops running has about six days before a
 * reading finds no partition (`telemetry_partitions_ahead_seconds` shows it).
 */
export const PARTITION_AHEAD_DAYS = 7;

/** One partition; `from` null is MINVALUE (everything before `to`), `to` null MAXVALUE. */
export interface PartitionBounds {
  name: string;
  from: Date | null;
  to: Date | null;
}

export interface PartitionPolicy {
  interval: PartitionInterval;
  /** Readings are kept this many days; 0: forever. */
  retentionDays: number;
}

export interface PartitionPlan<P extends PartitionBounds = PartitionBounds> {
  /** In the order to create them. */
  create: PartitionBounds[];
  /** Partitions wholly older than the retention. */
  drop: P[];
}

/** The first boundary of `interval` strictly after `t` (the next UTC midnight or first of a month). */
export function nextBoundary(t: Date, interval: PartitionInterval): Date {
  const y = t.getUTCFullYear();
  const m = t.getUTCMonth();
  return new Date(interval === 'day' ? Date.UTC(y, m, t.getUTCDate() + 1) : Date.UTC(y, m + 1, 1));
}

/** The boundary of `interval` at or before `t`. */
export function boundaryAtOrBefore(t: Date, interval: PartitionInterval): Date {
  const y = t.getUTCFullYear();
  const m = t.getUTCMonth();
  return new Date(interval === 'day' ? Date.UTC(y, m, t.getUTCDate()) : Date.UTC(y, m, 1));
}

const yyyymmdd = (t: Date): string => t.toISOString().slice(0, 10).replace(/-/g, '');

/**
 * `telemetry_p<yyyymmdd>` after its first day (boundaries are UTC midnights, so names are
 * unique whatever the width), `telemetry_before_<yyyymmdd>` for the partition of every
 * time before a day. Persisted: they are table names.
 */
export function partitionName(from: Date | null, to: Date): string {
  return from ? `telemetry_p${yyyymmdd(from)}` : `telemetry_before_${yyyymmdd(to)}`;
}

/**
 * What to create and drop at `now`:
 * - ahead: partitions of `interval` from the newest partition's end until at least
 *   {@link PARTITION_AHEAD_DAYS} after now; the first one ends at the next boundary of
 *   `interval`, so a width changed in the configuration applies from there;
 * - behind: when nothing takes readings older than the oldest partition though the
 *   retention would keep them (the retention was raised or turned off after partitions
 *   were dropped), one partition of everything before it;
 * - drop: with a retention, each partition whose every reading is older than it.
 * A table without partitions gets both ends, from the current `interval` on.
 */
export function planPartitions<P extends PartitionBounds>(
  existing: P[],
  policy: PartitionPolicy,
  now: Date,
): PartitionPlan<P> {
  const create: PartitionBounds[] = [];
  const kept = policy.retentionDays > 0 ? now.getTime() - policy.retentionDays * DAY_MS : null;

  const ends = existing.map((p) => p.to);
  if (!ends.includes(null)) {
    let from =
      existing.length > 0
        ? new Date(Math.max(...ends.map((t) => t!.getTime())))
        : boundaryAtOrBefore(now, policy.interval);
    const until = now.getTime() + PARTITION_AHEAD_DAYS * DAY_MS;
    while (from.getTime() < until) {
      const to = nextBoundary(from, policy.interval);
      create.push({ name: partitionName(from, to), from, to });
      from = to;
    }
  }

  const starts = [...existing, ...create].map((p) => p.from);
  if (!starts.includes(null)) {
    const oldest = new Date(Math.min(...starts.map((t) => t!.getTime())));
    if (kept === null || oldest.getTime() > kept)
      create.unshift({ name: partitionName(null, oldest), from: null, to: oldest });
  }

  const drop = kept === null ? [] : existing.filter((p) => p.to !== null && p.to.getTime() <= kept);
  return { create, drop };
}
