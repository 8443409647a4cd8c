import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import type { Schemas } from '../api/client';
import { unwrap } from '../api/errors';
import { ActionButton, Badge, Empty, ErrorBanner, Loading, Head } from '../components/ui';
import { allPages } from '../lib/pages';
import { formatTime, relative } from '../lib/time';
import { useInterval, useLoad } from '../lib/use-load';
import { useSession } from '../session';

type Webhook = Schemas['WebhookResponse'];
type Delivery = Schemas['DeliveryResponse'];

function Circuit({ webhook, tick }: { webhook: Webhook; tick: number }) {
  const { api } = useSession();
  const circuit = useLoad(
    () =>
      unwrap(
        api.GET('/webhooks/{webhook_id}/circuit-status', {
          params: { path: { webhook_id: webhook.id } },
        }),
      ),
    [webhook.id, tick],
  );
  if (circuit.error) return <span class="muted">unknown</span>;
  if (!circuit.data) return <span class="muted">…</span>;
  const c = circuit.data;
  const kind = c.state === 'closed' ? 'online' : c.state === 'open' ? 'open' : 'acknowledged';
  return (
    <span>
      <Badge kind={kind}>circuit {c.state.replace('_', '-')}</Badge>
      {c.consecutive_failures > 0 && (
        <span class="muted"> {c.consecutive_failures} failures in a row</span>
      )}
      {c.next_attempt_at && (
        <span class="muted"> · next try {relative(c.next_attempt_at, Date.now())}</span>
      )}
    </span>
  );
}

function Attempts({ delivery }: { delivery: Delivery }) {
  const { api } = useSession();
  const attempts = useLoad(
    () =>
      allPages((c) =>
        unwrap(
          api.GET('/webhook-deliveries/{delivery_id}/attempts', {
            params: { path: { delivery_id: delivery.id }, query: { cursor: c } },
          }),
        ),
      ),
    [delivery.id, delivery.attempts],
  );
  if (attempts.error) return <ErrorBanner error={attempts.error} />;
  if (!attempts.data) return <Loading when />;
  if (attempts.data.length === 0) return <Empty>No attempt yet.</Empty>;
  return (
    <table class="table nested">
      <caption class="sr-only">Attempts of delivery {delivery.id}</caption>
      <Head columns={['#', 'Started', 'Took', 'Answer', 'Error / response']} />
      <tbody>
        {attempts.data.map((a) => (
          <tr key={a.attempt}>
            <td>{a.attempt}</td>
            <td>{formatTime(a.started_at)}</td>
            <td>{a.duration_ms} ms</td>
            <td>{a.status_code ?? '—'}</td>
            <td>
              {(a.error ?? a.response_excerpt) ? <code>{a.error ?? a.response_excerpt}</code> : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Deliveries({
  webhook,
  tick,
  onChanged,
}: {
  webhook: Webhook;
  tick: number;
  onChanged: () => void;
}) {
  const { api, key } = useSession();
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const deliveries = useLoad(
    () =>
      unwrap(
        api.GET('/projects/{project_id}/webhook-deliveries', {
          params: {
            path: { project_id: key.project.id },
            query: { webhook_id: webhook.id, limit: 25 },
          },
        }),
      ),
    [webhook.id, tick],
  );
  const items = deliveries.data?.items ?? [];
  return (
    <>
      <ErrorBanner error={deliveries.error ?? error} />
      {deliveries.data && items.length === 0 && <Empty>No deliveries yet.</Empty>}
      {items.length > 0 && (
        <table class="table">
          <caption class="sr-only">Newest deliveries to {webhook.url}</caption>
          <Head columns={['Status', 'Event', 'Created', 'Attempts', 'Last answer', 'Actions']} />
          <tbody>
            {items.map((d) => (
              <Fragment key={d.id}>
                <tr class="delivery">
                  <td>
                    <Badge
                      kind={
                        d.status === 'succeeded'
                          ? 'online'
                          : d.status === 'failed'
                            ? 'open'
                            : 'acknowledged'
                      }
                    >
                      {d.status}
                    </Badge>
                  </td>
                  <td>{d.event_type}</td>
                  <td>{formatTime(d.created_at)}</td>
                  <td>{d.attempts}</td>
                  <td>
                    {d.last_status_code ?? ''}{' '}
                    {d.last_error ? <span class="muted">{d.last_error}</span> : ''}
                    {d.status === 'pending' && d.next_attempt_at && (
                      <span class="muted"> next {relative(d.next_attempt_at, Date.now())}</span>
                    )}
                  </td>
                  <td>
                    <span class="actions">
                      <button
                        type="button"
                        aria-expanded={open === d.id}
                        onClick={() => setOpen(open === d.id ? null : d.id)}
                      >
                        {open === d.id ? 'Hide attempts' : 'Attempts'}
                      </button>
                      <ActionButton
                        disabled={d.status !== 'failed'}
                        onClick={async () => {
                          setError(null);
                          try {
                            await unwrap(
                              api.POST('/webhook-deliveries/{delivery_id}/retry', {
                                params: { path: { delivery_id: d.id } },
                              }),
                            );
                            onChanged();
                          } catch (e) {
                            setError(e);
                          }
                        }}
                      >
                        Retry
                      </ActionButton>
                    </span>
                  </td>
                </tr>
                {open === d.id && (
                  <tr>
                    <td colSpan={6}>
                      <Attempts delivery={d} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function WebhooksPage() {
  const { api, key } = useSession();
  const [tick, setTick] = useState(0);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useInterval(() => setTick((t) => t + 1), 5000, true);
  const webhooks = useLoad(
    () =>
      allPages((c) =>
        unwrap(
          api.GET('/projects/{project_id}/webhooks', {
            params: { path: { project_id: key.project.id }, query: { cursor: c } },
          }),
        ),
      ),
    [key.project.id],
  );
  const refresh = () => {
    webhooks.reload();
    setTick((t) => t + 1);
  };
  const run = (what: () => Promise<unknown>, done: string) => async () => {
    setError(null);
    setMessage(null);
    try {
      await what();
      setMessage(done);
      refresh();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section aria-labelledby="webhooks-title">
      <h1 id="webhooks-title">Webhooks</h1>
      <ErrorBanner error={webhooks.error ?? error} />
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
      <Loading when={webhooks.loading && !webhooks.data} />
      {webhooks.data && webhooks.data.length === 0 && (
        <Empty>
          No webhooks. Create one with POST /projects/&#123;id&#125;/webhooks (see the API
          reference).
        </Empty>
      )}
      {(webhooks.data ?? []).map((w) => (
        <article key={w.id} class="card" aria-labelledby={`wh-${w.id}`}>
          <div class="card-head">
            <h2 id={`wh-${w.id}`}>
              <code>{w.url}</code>
            </h2>
            {w.enabled ? (
              <Badge kind="online">enabled</Badge>
            ) : (
              <Badge kind="never">disabled</Badge>
            )}
            {w.disabled_reason && <span class="muted">{w.disabled_reason}</span>}
            <Circuit webhook={w} tick={tick} />
          </div>
          <p class="muted">
            {w.description ? `${w.description} · ` : ''}events: {w.event_types.join(', ')}
          </p>
          <div class="buttons">
            <ActionButton
              onClick={run(
                () =>
                  unwrap(
                    api.POST('/webhooks/{webhook_id}/test', {
                      params: { path: { webhook_id: w.id } },
                    }),
                  ),
                `A webhook.test event is on its way to ${w.url}.`,
              )}
            >
              Send test event
            </ActionButton>
            {w.enabled ? (
              <ActionButton
                onClick={run(
                  () =>
                    unwrap(
                      api.POST('/webhooks/{webhook_id}/disable', {
                        params: { path: { webhook_id: w.id } },
                      }),
                    ),
                  'Disabled.',
                )}
              >
                Disable
              </ActionButton>
            ) : (
              <ActionButton
                onClick={run(
                  () =>
                    unwrap(
                      api.POST('/webhooks/{webhook_id}/enable', {
                        params: { path: { webhook_id: w.id } },
                      }),
                    ),
                  'Enabled.',
                )}
              >
                Enable
              </ActionButton>
            )}
          </div>
          <h3>Deliveries</h3>
          <Deliveries webhook={w} tick={tick} onChanged={refresh} />
        </article>
      ))}
    </section>
  );
}
