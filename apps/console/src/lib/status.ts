import type { Schemas } from '../api/client';

/** Without an offline rule, a device is called online when heard from within this. */
export const DEFAULT_ONLINE_SECONDS = 300;

/**
 * How recent "online" is: the shortest `offline_after_seconds` of the project's enabled
 * offline rules (what the project itself calls offline), or five minutes.
 */
export function onlineWindow(rules: Schemas['RuleResponse'][]): number {
  const windows = rules
    .filter((r) => r.enabled && r.kind === 'offline' && r.offline_after_seconds)
    .map((r) => r.offline_after_seconds as number);
  return windows.length > 0 ? Math.min(...windows) : DEFAULT_ONLINE_SECONDS;
}

export type DeviceStatus = 'online' | 'offline' | 'never';

export function deviceStatus(
  lastSeenAt: string | null,
  nowMs: number,
  windowSeconds: number,
): DeviceStatus {
  if (!lastSeenAt) return 'never';
  return nowMs - Date.parse(lastSeenAt) <= windowSeconds * 1000 ? 'online' : 'offline';
}
