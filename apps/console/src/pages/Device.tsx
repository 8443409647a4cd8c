import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Schemas } from '../api/client';
import { ApiError, unwrap } from '../api/errors';
import { AlertActions, AlertStatus } from '../components/alerts';
import { type Range, RangePicker, windowOf } from '../components/RangePicker';
import { TimeChart } from '../components/TimeChart';
import { Badge, Empty, ErrorBanner, Loading, Head } from '../components/ui';
import { alertSpans, bandSeries } from '../lib/series';
import { deviceStatus, onlineWindow } from '../lib/status';
import { alignWindow, bucketFor, formatTime, relative, toIso } from '../lib/time';
import { useInterval, useLoad } from '../lib/use-load';
import { useRules } from '../lib/use-rules';
import { useSession } from '../session';

const BAND_SERIES: uPlot.Series[] = [
  { label: 'min', stroke: '#93c5fd', width: 1 },
  { label: 'avg', stroke: '#1d4ed8', width: 2 },
  { label: 'max', stroke: '#93c5fd', width: 1 },
];
const BANDS: uPlot.Band[] = [{ series: [3, 1], fill: 'rgba(59, 130, 246, 0.15)' }];

export function DevicePage({ id }: { id: string }) {
  const { api } = useSession();
  const [metric, setMetric] = useState<string | null>(null);
  const [range, setRange] = useState<Range>({ kind: 'relative', seconds: 3600 });
  const [history, setHistory] = useState<Range[]>([]);
  const [autoRefresh, setAutoRefresh] = useState(true);
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), 10000, autoRefresh && range.kind === 'relative');

  const device = useLoad(
    () => unwrap(api.GET('/devices/{device_id}', { params: { path: { device_id: id } } })),
    [id],
  );
  const metrics = useLoad(
    () => unwrap(api.GET('/devices/{device_id}/metrics', { params: { path: { device_id: id } } })),
    [id, now],
  );
  const latest = useLoad(
    () =>
      unwrap(
        api.GET('/telemetry/devices/{device_id}/telemetry/latest', {
          params: { path: { device_id: id } },
        }),
      ).catch((e: unknown) => {
        // No reading yet is a 404; anything else is an error to show.
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [id, now],
  );
  const rules = useRules();
  const alerts = useLoad(
    () =>
      unwrap(
        api.GET('/devices/{device_id}/alerts', {
          params: { path: { device_id: id }, query: { limit: 100 } },
        }),
      ),
    [id, now],
  );

  const numeric = (metrics.data?.items ?? []).filter((m) => m.numeric_readings > 0);
  // First the metric a rule of the project watches, else the first one that is numeric.
  const watched = numeric.find((m) => (rules.data ?? []).some((r) => r.metric === m.metric));
  const shown = metric ?? watched?.metric ?? numeric[0]?.metric ?? null;
  const view = windowOf(range, now);
  const bucket = bucketFor(view.to - view.from);
  const aligned = alignWindow(view, bucket);

  const chart = useLoad(async () => {
    if (!shown) return null;
    const get = (agg: 'min' | 'avg' | 'max') =>
      unwrap(
        api.GET('/telemetry/devices/{device_id}/telemetry/aggregate', {
          params: {
            path: { device_id: id },
            query: {
              metric: shown,
              from: toIso(aligned.from),
              to: toIso(aligned.to),
              bucket_seconds: bucket,
              agg,
            },
          },
        }),
      );
    const [min, avg, max] = await Promise.all([get('min'), get('avg'), get('max')]);
    return bandSeries(min.items, avg.items, max.items);
    // A relative range asks again on every refresh tick, not only when a bucket rolls over.
  }, [id, shown, aligned.from, aligned.to, bucket, range.kind === 'relative' ? now : 0]);

  const data = useMemo<uPlot.AlignedData>(() => {
    const d = chart.data;
    return d ? [d.xs, d.min, d.avg, d.max] : [[], [], [], []];
  }, [chart.data]);
  const xRange = useMemo(() => ({ from: view.from, to: view.to }), [view.from, view.to]);
  const ruleById = new Map((rules.data ?? []).map((r) => [r.id, r]));
  const deviceAlerts: Schemas['AlertResponse'][] = alerts.data?.items ?? [];
  const spans = useMemo(
    () =>
      alertSpans(
        deviceAlerts.filter((a) => !shown || ruleById.get(a.rule_id)?.metric === shown),
        xRange,
        now / 1000,
      ),
    [alerts.data, rules.data, shown, xRange, now],
  );

  const changeRange = (next: Range) => {
    setHistory((h) => [...h, range]);
    setRange(next);
  };
  /** The range before the last zoom, pan or pick (Back, or a double-click on the chart). */
  const goBack = () => {
    if (history.length === 0) return;
    setRange(history[history.length - 1]);
    setHistory((h) => h.slice(0, -1));
  };

  const d = device.data;
  const status = d ? deviceStatus(d.last_seen_at, now, onlineWindow(rules.data ?? [])) : null;
  return (
    <section aria-labelledby="device-title">
      <p>
        <a href="#/devices">← Devices</a>
      </p>
      <ErrorBanner error={device.error} />
      <h1 id="device-title">
        Device {d?.external_id ?? ''}{' '}
        {status && <Badge kind={status}>{status === 'never' ? 'never seen' : status}</Badge>}
      </h1>
      {d && (
        <p class="muted">
          {d.name ? `${d.name} · ` : ''}tags: {d.tags.length ? d.tags.join(', ') : 'none'} · last
          seen {relative(d.last_seen_at, now)} · id <code>{d.id}</code>
        </p>
      )}

      <h2>Metrics</h2>
      <ErrorBanner error={metrics.error} />
      <Loading when={metrics.loading && !metrics.data} />
      {metrics.data && metrics.data.items.length === 0 && <Empty>No readings yet.</Empty>}
      {metrics.data && metrics.data.items.length > 0 && (
        <table class="table">
          <caption class="sr-only">Metrics this device sends</caption>
          <Head columns={['Metric', 'Types', 'Readings', 'Last value', 'At', 'Chart']} />
          <tbody>
            {metrics.data.items.map((m) => (
              <tr key={m.metric} class={m.metric === shown ? 'selected' : ''}>
                <td>{m.metric}</td>
                <td>{m.types.join(', ')}</td>
                <td>{m.readings}</td>
                <td>{JSON.stringify(m.last_value)}</td>
                <td>{formatTime(m.last_ts)}</td>
                <td>
                  {m.numeric_readings > 0 ? (
                    <button
                      type="button"
                      aria-pressed={m.metric === shown}
                      onClick={() => setMetric(m.metric)}
                    >
                      Show {m.metric}
                    </button>
                  ) : (
                    <span class="muted">not numeric</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {metrics.data?.truncated && (
        <p class="muted">
          The catalog looks at the newest {metrics.data.readings_limit} readings only.
        </p>
      )}

      {shown && (
        <>
          <h2>
            {shown} <span class="muted">(min / avg / max per {bucket} s)</span>
          </h2>
          <RangePicker
            range={range}
            onChange={changeRange}
            autoRefresh={autoRefresh}
            onAutoRefresh={setAutoRefresh}
            nowMs={now}
          />
          <p class="muted">
            Drag across the chart to zoom in; double-click to go back.{' '}
            {history.length > 0 && (
              <button type="button" onClick={goBack}>
                Back to the previous range
              </button>
            )}
          </p>
          <ErrorBanner error={chart.error} />
          <TimeChart
            label={`${shown} of device ${d?.external_id ?? id}, min, average and max per ${bucket} seconds`}
            data={data}
            series={BAND_SERIES}
            bands={BANDS}
            spans={spans}
            xRange={xRange}
            onZoom={(from, to) => changeRange({ kind: 'absolute', from, to })}
            onReset={goBack}
          />
          <p class="legend muted">
            <span class="swatch swatch-open" /> open alert{' '}
            <span class="swatch swatch-acknowledged" /> acknowledged{' '}
            <span class="swatch swatch-resolved" /> resolved
          </p>
        </>
      )}

      <h2>Latest reading</h2>
      <ErrorBanner error={latest.error} />
      {latest.data ? (
        <p>
          {formatTime(latest.data.ts)}: <code>{JSON.stringify(latest.data.data)}</code>
        </p>
      ) : (
        <Empty>None yet.</Empty>
      )}

      <h2>Alerts</h2>
      <ErrorBanner error={alerts.error} />
      {deviceAlerts.length === 0 ? (
        <Empty>No alerts for this device.</Empty>
      ) : (
        <table class="table">
          <Head columns={['Status', 'Rule', 'Triggered', 'Resolved', 'Actions']} />
          <tbody>
            {deviceAlerts.map((a) => (
              <tr key={a.id}>
                <td>
                  <AlertStatus alert={a} />
                </td>
                <td>{ruleById.get(a.rule_id)?.name ?? a.rule_id}</td>
                <td>{formatTime(a.triggered_at)}</td>
                <td>{formatTime(a.resolved_at)}</td>
                <td>
                  <AlertActions alert={a} onChanged={alerts.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
