/** Time ranges and bucket sizes for the charts: pure, so they are tested alone. */

export interface RangePreset {
  id: string;
  label: string;
  seconds: number;
}

export const RANGE_PRESETS: readonly RangePreset[] = [
  { id: '15m', label: 'Last 15 minutes', seconds: 15 * 60 },
  { id: '1h', label: 'Last hour', seconds: 3600 },
  { id: '6h', label: 'Last 6 hours', seconds: 6 * 3600 },
  { id: '24h', label: 'Last 24 hours', seconds: 86400 },
  { id: '7d', label: 'Last 7 days', seconds: 7 * 86400 },
  { id: '30d', label: 'Last 30 days', seconds: 30 * 86400 },
];

/** Bucket sizes a person reads easily; the API aligns buckets to the Unix epoch. */
const NICE_BUCKETS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
  604800,
];

/** The API answers at most this many buckets per query. */
export const MAX_BUCKETS = 10000;

/** The smallest nice bucket that cuts `seconds` into at most `points` buckets. */
export function bucketFor(seconds: number, points = 240): number {
  const wanted = Math.max(1, seconds / Math.max(1, points));
  const nice = NICE_BUCKETS.find((b) => b >= wanted);
  return nice ?? Math.ceil(wanted / 86400) * 86400;
}

/** A time range in unix seconds, `from` inclusive and `to` exclusive, as the API takes. */
export interface Window {
  from: number;
  to: number;
}

/**
 * The buckets' window for a range: widened to whole buckets, so the first and the last
 * are complete and the same reading always lands in the same bucket on a refresh.
 */
export function alignWindow(range: Window, bucket: number): Window {
  const from = Math.floor(range.from / bucket) * bucket;
  const to = Math.max(from + bucket, Math.ceil(range.to / bucket) * bucket);
  return { from, to };
}

/** The last `seconds` before `nowMs`. */
export const lastSeconds = (seconds: number, nowMs: number): Window => ({
  from: nowMs / 1000 - seconds,
  to: nowMs / 1000,
});

/** The range moved by `fraction` of its width (negative: earlier). */
export function pan(range: Window, fraction: number): Window {
  const shift = (range.to - range.from) * fraction;
  return { from: range.from + shift, to: range.to + shift };
}

export const toIso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

/** `<input type="datetime-local">` speaks local time without a zone. */
export function toLocalInput(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export const fromLocalInput = (value: string): number | undefined => {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms / 1000 : undefined;
};

/** "3 min ago", "in 20 s": short, for tables. */
export function relative(iso: string | null, nowMs: number): string {
  if (!iso) return 'never';
  const s = Math.round((nowMs - Date.parse(iso)) / 1000);
  const abs = Math.abs(s);
  const text =
    abs < 60
      ? `${abs} s`
      : abs < 3600
        ? `${Math.round(abs / 60)} min`
        : abs < 172800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86400)} d`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

export const formatTime = (iso: string | null): string =>
  iso ? new Date(iso).toLocaleString(undefined, { hour12: false }) : '—';

/** "1 alert", "3 alerts". */
export const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
