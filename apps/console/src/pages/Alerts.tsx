import { useState } from 'preact/hooks';
import type { Schemas } from '../api/client';
import { unwrap } from '../api/errors';
import { AlertActions, AlertStatus, AlertWindowChart } from '../components/alerts';
import { Empty, ErrorBanner, Loading, Pager } from '../components/ui';
import { formatTime } from '../lib/time';
import { useInterval, useLoad } from '../lib/use-load';
import { useRules } from '../lib/use-rules';
import { useSession } from '../session';

type Status = Schemas['AlertResponse']['status'];
const STATUSES: Array<Status | 'all'> = ['open', 'acknowledged', 'resolved', 'all'];

export function AlertsPage() {
  const { api, key } = useSession();
  const projectId = key.project.id;
  const [status, setStatus] = useState<Status | 'all'>('open');
  const [ruleId, setRuleId] = useState('');
  const [cursor, setCursor] = useState<string | undefined>();
  const [tick, setTick] = useState(0);
  useInterval(() => setTick((t) => t + 1), 10000, true);

  const rules = useRules();
  const page = useLoad(
    () =>
      unwrap(
        api.GET('/projects/{project_id}/alerts', {
          params: {
            path: { project_id: projectId },
            query: {
              limit: 25,
              cursor,
              status: status === 'all' ? undefined : status,
              rule_id: ruleId || undefined,
            },
          },
        }),
      ),
    [projectId, status, ruleId, cursor, tick],
  );
  const alerts = page.data?.items ?? [];
  // Device names for the alerts shown: one lookup per device, not per alert.
  const deviceIds = [...new Set(alerts.map((a) => a.device_id))].sort();
  const devices = useLoad(
    async () =>
      new Map(
        await Promise.all(
          deviceIds.map(async (id) => {
            const d = await unwrap(
              api.GET('/devices/{device_id}', { params: { path: { device_id: id } } }),
            ).catch(() => null);
            return [id, d?.external_id ?? id] as const;
          }),
        ),
      ),
    [deviceIds.join()],
  );
  const ruleName = new Map((rules.data ?? []).map((r) => [r.id, r.name]));

  return (
    <section aria-labelledby="alerts-title">
      <h1 id="alerts-title">Alerts</h1>
      <div class="filters" role="group" aria-label="Filters">
        <fieldset class="segmented">
          <legend>Status</legend>
          {STATUSES.map((s) => (
            <label key={s} class={s === status ? 'active' : ''}>
              <input
                type="radio"
                name="status"
                value={s}
                checked={s === status}
                onChange={() => {
                  setStatus(s);
                  setCursor(undefined);
                }}
              />
              {s}
            </label>
          ))}
        </fieldset>
        <label>
          Rule
          <select
            value={ruleId}
            onChange={(e) => {
              setRuleId(e.currentTarget.value);
              setCursor(undefined);
            }}
          >
            <option value="">every rule</option>
            {(rules.data ?? []).map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBanner error={page.error} />
      <Loading when={page.loading && !page.data} />
      {page.data && alerts.length === 0 && (
        <Empty>No {status === 'all' ? '' : status} alerts.</Empty>
      )}
      <ul class="cards">
        {alerts.map((a) => (
          <li
            key={a.id}
            class="card"
            aria-label={`Alert ${ruleName.get(a.rule_id) ?? ''} on ${devices.data?.get(a.device_id) ?? a.device_id}`}
          >
            <div class="card-head">
              <AlertStatus alert={a} />
              <strong>{ruleName.get(a.rule_id) ?? 'rule ' + a.rule_id.slice(0, 8)}</strong>
              <span>
                on{' '}
                <a href={`#/devices/${a.device_id}`}>
                  {devices.data?.get(a.device_id) ?? a.device_id.slice(0, 8)}
                </a>
              </span>
              <span class="muted">triggered {formatTime(a.triggered_at)}</span>
              {a.acknowledged_at && (
                <span class="muted">acknowledged {formatTime(a.acknowledged_at)}</span>
              )}
              {a.resolved_at && <span class="muted">resolved {formatTime(a.resolved_at)}</span>}
              <AlertActions alert={a} onChanged={page.reload} />
            </div>
            <AlertWindowChart alert={a} />
          </li>
        ))}
      </ul>
      <Pager cursor={cursor} next={page.data?.next_cursor} onPage={setCursor} />
    </section>
  );
}
