/** Event limits of `POST /telemetry` (docs/api.md, Telemetry). */
export const MAX_EVENTS_PER_BATCH = 5000;
export const MAX_METRICS_PER_EVENT = 64;
export const MAX_METRIC_NAME_LENGTH = 64;
export const MAX_STRING_VALUE_LENGTH = 1024;
/**
 * How far ahead of the api's clock a reading's `ts` may be (a device clock a little fast);
 * past it, a 422. Partitions exist a week ahead (PARTITION_AHEAD_DAYS), so whatever the
 * api accepts has a partition to go to.
 */
export const MAX_FUTURE_MS = 24 * 3600 * 1000;
/** How long `POST /telemetry` waits for Redis before answering 503. */
export const ENQUEUE_DEADLINE_MS = 2000;
/**
 * `GET /devices/{id}/metrics` looks at this many of the device's newest readings: what
 * it sends now, at a bounded cost (at most 64 metrics each: 64,000 values).
 */
export const CATALOG_READINGS = 1000;
/** … and lists at most this many metrics (by name), saying when there were more. */
export const CATALOG_MAX_METRICS = 1000;
