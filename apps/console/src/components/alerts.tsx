import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Schemas } from '../api/client';
import { unwrap } from '../api/errors';
import { firingWindow } from '../lib/series';
import { useSession } from '../session';
import { TimeChart } from './TimeChart';
import { ActionButton, Badge, ErrorBanner } from './ui';

type Alert = Schemas['AlertResponse'];

export function AlertStatus({ alert }: { alert: Alert }) {
  return (
    <>
      <Badge kind={alert.status}>{alert.status}</Badge>
      {alert.silenced_by && <Badge kind="silenced">silenced</Badge>}
    </>
  );
}

/** Acknowledge and resolve: greyed out for a read-only key, and for an alert past them. */
export function AlertActions({ alert, onChanged }: { alert: Alert; onChanged: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<unknown>(null);
  const act = (what: 'ack' | 'resolve') => async () => {
    setError(null);
    try {
      const path = what === 'ack' ? '/alerts/{alert_id}/ack' : '/alerts/{alert_id}/resolve';
      await unwrap(api.POST(path, { params: { path: { alert_id: alert.id } } }));
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <span class="actions">
      <ActionButton onClick={act('ack')} disabled={alert.status !== 'open'}>
        Acknowledge
      </ActionButton>
      <ActionButton onClick={act('resolve')} disabled={alert.status === 'resolved'}>
        Resolve
      </ActionButton>
      <ErrorBanner error={error} />
    </span>
  );
}

const WINDOW_SERIES: uPlot.Series[] = [
  { label: 'value', stroke: '#1d4ed8', width: 2, points: { show: true, size: 6 } },
];

/** The readings that fired an alert, with the rule's threshold as a dashed line. */
export function AlertWindowChart({ alert }: { alert: Alert }) {
  const w = useMemo(() => firingWindow(alert.details), [alert.details]);
  const data = useMemo<uPlot.AlignedData>(
    () => [w.points.map((p) => Date.parse(p.ts) / 1000), w.points.map((p) => p.value)],
    [w],
  );
  if (w.points.length === 0)
    return (
      <p class="muted">No window recorded (an offline alert, or from before windows were kept).</p>
    );
  const breached = w.points.filter((p) => p.breached).length;
  return (
    <TimeChart
      label={`The ${w.points.length} readings of ${w.metric ?? 'the metric'} that fired the alert, ${breached} breaching ${w.operator ?? ''} ${w.threshold ?? ''}`}
      data={data}
      series={WINDOW_SERIES}
      threshold={w.threshold}
      height={160}
    />
  );
}
