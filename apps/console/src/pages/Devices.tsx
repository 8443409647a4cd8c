import { useState } from 'preact/hooks';
import type { Schemas } from '../api/client';
import { unwrap } from '../api/errors';
import { Badge, Empty, ErrorBanner, Loading, Pager, Head } from '../components/ui';
import { deviceStatus, onlineWindow } from '../lib/status';
import { relative } from '../lib/time';
import { useInterval, useLoad } from '../lib/use-load';
import { useRules } from '../lib/use-rules';
import { useSession } from '../session';

export function DevicesPage() {
  const { api, key } = useSession();
  const projectId = key.project.id;
  const [tag, setTag] = useState('');
  const [externalId, setExternalId] = useState('');
  const [filters, setFilters] = useState({ tag: '', externalId: '' });
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), 15000, true);

  const rules = useRules();
  const page = useLoad(
    () =>
      unwrap(
        api.GET('/projects/{project_id}/devices', {
          params: {
            path: { project_id: projectId },
            query: {
              limit: 50,
              cursor,
              tag: filters.tag || undefined,
              external_id: filters.externalId || undefined,
            },
          },
        }),
      ),
    [projectId, filters, cursor],
  );
  const onlineSeconds = onlineWindow(rules.data ?? []);
  const devices: Schemas['DeviceResponse'][] = page.data?.items ?? [];

  return (
    <section aria-labelledby="devices-title">
      <h1 id="devices-title">Devices</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor(undefined);
          setFilters({ tag: tag.trim(), externalId: externalId.trim() });
        }}
      >
        <label>
          External id
          <input
            value={externalId}
            onInput={(e) => setExternalId(e.currentTarget.value)}
            placeholder="sensor-1"
          />
        </label>
        <label>
          Tag
          <input
            value={tag}
            onInput={(e) => setTag(e.currentTarget.value)}
            placeholder="greenhouse"
          />
        </label>
        <button type="submit">Search</button>
      </form>
      <p class="muted">
        Online: heard from in the last{' '}
        {Math.round(onlineSeconds / 60) >= 1
          ? `${Math.round(onlineSeconds / 60)} min`
          : `${onlineSeconds} s`}
        {rules.data?.some((r) => r.enabled && r.kind === 'offline')
          ? ' (the shortest offline rule of the project)'
          : ''}
        .
      </p>
      <ErrorBanner error={page.error} />
      <Loading when={page.loading && !page.data} />
      {page.data && devices.length === 0 && (
        <Empty>No devices match. Devices appear when they first send telemetry.</Empty>
      )}
      {devices.length > 0 && (
        <table class="table">
          <Head columns={['Status', 'External id', 'Name', 'Tags', 'Last seen']} />
          <tbody>
            {devices.map((d) => {
              const status = deviceStatus(d.last_seen_at, now, onlineSeconds);
              return (
                <tr key={d.id}>
                  <td>
                    <Badge kind={status}>{status === 'never' ? 'never seen' : status}</Badge>
                  </td>
                  <td>
                    <a href={`#/devices/${d.id}`}>{d.external_id}</a>
                  </td>
                  <td>{d.name ?? ''}</td>
                  <td>
                    {d.tags.map((t) => (
                      <button
                        type="button"
                        class="tag"
                        key={t}
                        title={`Only devices tagged ${t}`}
                        onClick={() => {
                          setTag(t);
                          setCursor(undefined);
                          setFilters({ tag: t, externalId: '' });
                          setExternalId('');
                        }}
                      >
                        {t}
                      </button>
                    ))}
                  </td>
                  <td title={d.last_seen_at ?? ''}>{relative(d.last_seen_at, now)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <Pager cursor={cursor} next={page.data?.next_cursor} onPage={setCursor} />
    </section>
  );
}
