declare const projectIdBrand: unique symbol;

/**
 * A project id that has been checked as the tenant of the request or job at hand: the
 * api's guards hand one out for the project a key belongs to, the worker for the project
 * a job was queued under. Tenant-scoped repository methods take it first, so forgetting
 * the scope is a compile error, not a review comment. Worker paths keyed by a device or
 * delivery id alone live in worker-only classes (`…Progress`, `…Ledger`) instead.
 */
export type ProjectId = string & { readonly [projectIdBrand]: true };

/** Marks an id as checked: only where the check happened (auth guard, job payload, test). */
export function asProjectId(id: string): ProjectId {
  return id as ProjectId;
}

declare const projectDeviceBrand: unique symbol;

/**
 * A device id checked to belong to the request's project (a lookup scoped by its
 * {@link ProjectId} found it). Reads keyed by a device alone (telemetry has no project
 * column) take one, so an unchecked id from a URL doesn't compile there.
 */
export type ProjectDeviceId = string & { readonly [projectDeviceBrand]: true };

/** Marks a device id as checked: only right after the scoped lookup that found it. */
export function asProjectDeviceId(id: string): ProjectDeviceId {
  return id as ProjectDeviceId;
}
