import type { Schemas } from '../api/client';

type Bucket = Schemas['AggregateBucketDto'];

/** uPlot's columns: x in unix seconds, then one array per series (null: no value). */
export interface BandData {
  xs: number[];
  min: (number | null)[];
  avg: (number | null)[];
  max: (number | null)[];
}

/**
 * The min / avg / max answers of the aggregate endpoint, one row per bucket that has
 * readings in any of them, oldest first. The API leaves out empty buckets; so does this,
 * and the line joins across them.
 */
export function bandSeries(min: Bucket[], avg: Bucket[], max: Bucket[]): BandData {
  const rows = new Map<number, { min: number | null; avg: number | null; max: number | null }>();
  const put = (buckets: Bucket[], key: 'min' | 'avg' | 'max') => {
    for (const b of buckets) {
      const x = Date.parse(b.bucket_start) / 1000;
      const row = rows.get(x) ?? { min: null, avg: null, max: null };
      row[key] = b.value;
      rows.set(x, row);
    }
  };
  put(min, 'min');
  put(avg, 'avg');
  put(max, 'max');
  const xs = [...rows.keys()].sort((a, b) => a - b);
  return {
    xs,
    min: xs.map((x) => rows.get(x)!.min),
    avg: xs.map((x) => rows.get(x)!.avg),
    max: xs.map((x) => rows.get(x)!.max),
  };
}

/** A stretch of time an alert was active, clipped to what the chart shows. */
export interface Span {
  from: number;
  to: number;
  status: Schemas['AlertResponse']['status'];
  id: string;
}

/** Alerts as spans: from the reading that fired each to its resolution, or to `now`. */
export function alertSpans(
  alerts: Schemas['AlertResponse'][],
  view: { from: number; to: number },
  nowSeconds: number,
): Span[] {
  return alerts
    .map((a) => ({
      id: a.id,
      status: a.status,
      from: Date.parse(a.triggered_at) / 1000,
      to: a.resolved_at ? Date.parse(a.resolved_at) / 1000 : nowSeconds,
    }))
    .filter((s) => s.to >= view.from && s.from <= view.to)
    .map((s) => ({ ...s, from: Math.max(s.from, view.from), to: Math.min(s.to, view.to) }));
}

export interface WindowPoint {
  ts: string;
  value: number;
  breached: boolean;
}

/** The readings that fired an alert (`details.window`), if the alert carries them. */
export function firingWindow(details: Record<string, unknown>): {
  points: WindowPoint[];
  threshold: number | null;
  operator: string | null;
  metric: string | null;
} {
  const raw = Array.isArray(details.window) ? details.window : [];
  const points = raw.filter(
    (p): p is WindowPoint =>
      typeof p === 'object' &&
      p !== null &&
      typeof (p as WindowPoint).ts === 'string' &&
      typeof (p as WindowPoint).value === 'number',
  );
  const rule = (details.rule ?? {}) as Record<string, unknown>;
  return {
    points: [...points].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts)),
    threshold: typeof rule.threshold === 'number' ? rule.threshold : null,
    operator: typeof rule.operator === 'string' ? rule.operator : null,
    metric: typeof rule.metric === 'string' ? rule.metric : null,
  };
}

/** Alerts a backtest would have opened, counted per bucket of its range. */
export function openedPerBucket(
  result: Schemas['BacktestResponse'],
  bucket: number,
): { xs: number[]; opened: number[] } {
  const from = Math.floor(Date.parse(result.from) / 1000 / bucket) * bucket;
  const to = Date.parse(result.to) / 1000;
  const xs: number[] = [];
  for (let x = from; x < to; x += bucket) xs.push(x);
  const opened = xs.map(() => 0);
  for (const device of result.devices)
    for (const t of device.transitions) {
      if (t.kind !== 'open') continue;
      const i = Math.floor((Date.parse(t.at) / 1000 - from) / bucket);
      if (i >= 0 && i < opened.length) opened[i]++;
    }
  return { xs, opened };
}
