import { keyId } from '@app/webhooks/signature';
import { Delivery } from './delivery';
import { StoredSecret } from './delivery-store.service';
import { MAX_DELIVERIES } from './receiver.constants';

/**
 * The receiver's page, as one self-contained HTML string: no scripts, no external assets.
 * Bodies, headers and paths come from whoever can reach the port, so every interpolated
 * value is escaped by the `html` tag below unless it is itself `html` output.
 */
export interface PageView {
  deliveries: readonly Delivery[];
  secrets: readonly StoredSecret[];
  /** e.g. `http://127.0.0.1:9000` (from the Host header: escaped like everything else). */
  baseUrl: string;
  refresh: boolean;
  error?: string;
}

/** Served with the page: nothing may run, load or be framed. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const REFRESH_SECONDS = 5;

export function renderDeliveriesPage(view: PageView): string {
  const { deliveries, baseUrl, refresh } = view;
  const page = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        ${refresh ? html`<meta http-equiv="refresh" content="${REFRESH_SECONDS}" />` : ''}
        <title>(${deliveries.length}) webhook receiver</title>
        <style>
          ${raw(STYLE)}
        </style>
      </head>
      <body>
        <header>
          <h1>Webhook receiver</h1>
          <p>
            POST webhooks to <code>${baseUrl}/</code> (any path).
            <code>${baseUrl}/status/503</code> answers 503 (any code 100-599); add
            <code>?delay_ms=2000</code> to answer late (at most 60000). Last ${MAX_DELIVERIES}
            deliveries, newest first · <a href="/deliveries.json">JSON</a> ·
            ${
              refresh
                ? html`refreshes every ${REFRESH_SECONDS} s (<a href="/?refresh=off">pause</a>)`
                : html`auto-refresh paused (<a href="/">resume</a>)`
            }
            · clear with <code>curl -X DELETE ${baseUrl}/deliveries</code>
          </p>
        </header>
        ${view.error ? html`<p class="error">${view.error}</p>` : ''} ${renderSecrets(view)}
        <main>
          <h2>${deliveries.length} ${deliveries.length === 1 ? 'delivery' : 'deliveries'}</h2>
          ${deliveries.length === 0 ? html`<p class="muted">Nothing received yet.</p>` : ''}
          ${deliveries.map(renderDelivery)}
        </main>
      </body>
    </html> `;
  return page.value;
}

function renderSecrets({ secrets, refresh }: PageView): SafeHtml {
  return html`<section class="secrets">
    <h2>Signing secrets</h2>
    ${
      secrets.length === 0
        ? html`<p class="muted">
            None: deliveries show “? no secret”. Set RECEIVER_SECRETS or add one here.
          </p>`
        : html`<ol start="0">
            ${secrets.map(
              (s) =>
                html`<li>
                  <code>${maskSecret(s.value)}</code> key <code>${keyId(s.value)}</code>
                  <span class="muted"
                    >(${s.source === 'env' ? 'RECEIVER_SECRETS' : 'added here'})</span
                  >
                </li>`,
            )}
          </ol>`
    }
    <form method="post" action="/_secrets">
      ${refresh ? '' : html`<input type="hidden" name="refresh" value="off" />`}
      <input name="secret" placeholder="whsec_…" required autocomplete="off" size="48" />
      <button>Add and re-verify</button>
      ${refresh ? html`<span class="muted">(pause auto-refresh before pasting)</span>` : ''}
    </form>
  </section>`;
}

function renderDelivery(d: Delivery): SafeHtml {
  const v = d.verification;
  const badge =
    v.result === 'verified'
      ? html`<span class="badge ok">✓ verified</span>
          <span class="muted">secret #${v.secret_index}</span>`
      : v.result === 'invalid'
        ? html`<span class="badge bad">✗ invalid</span>
            <span class="why">${v.reason}</span> ${whyInvalid(v)}`
        : html`<span class="badge none">? no secret</span>`;
  const target = d.query ? `${d.path}?${d.query}` : d.path;
  const statusClass = d.status >= 400 ? 'bad' : d.status >= 300 || d.status < 200 ? 'warn' : 'ok';
  const headerLines = Object.entries(d.headers)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
  const bodyInfo = `${d.body.bytes} bytes${d.body.json ? ', JSON' : ''}${
    d.body.truncated ? ', truncated' : ''
  }`;
  return html`<article class="delivery">
    <div class="line">
      ${badge}
      <strong>${d.type ?? '(no type)'}</strong>
      <code title="webhook-id">${d.headers['webhook-id'] ?? '(no webhook-id)'}</code>
      <span>POST <code>${target}</code></span>
      <span class="status ${statusClass}"
        >→ ${d.status}${d.delayMs > 0 ? ` after ${d.delayMs} ms` : ''}</span
      >
      <time datetime="${d.receivedAt.toISOString()}">${d.receivedAt.toISOString()}</time>
      <span class="muted">#${d.id}</span>
    </div>
    <details>
      <summary>body (${bodyInfo}) and headers</summary>
      <pre class="headers">${headerLines || '(no webhook headers)'}</pre>
      <pre>${d.body.text || '(empty body)'}</pre>
    </details>
  </article>`;
}

/** What to do about a signature no secret verified, when the cause is known. */
function whyInvalid(v: Delivery['verification']): SafeHtml | '' {
  if ('key_ids' in v)
    return html`<span class="muted"
      >signed with key ${v.key_ids.join(' or ')}, which no secret here has: add that webhook's
      <code>whsec_</code> secret (shown when it was created or rotated) to
      <code>RECEIVER_SECRETS</code> (comma-separated, then restart the receiver) or with the form
      above</span
    >`;
  if ('secret_index' in v)
    return html`<span class="muted"
      >secret #${v.secret_index} signed it, but the body, <code>webhook-id</code> or
      <code>webhook-timestamp</code> changed after signing</span
    >`;
  return '';
}

/** Enough of a secret to tell two apart, not enough to use it. */
export function maskSecret(secret: string): string {
  const prefix = secret.startsWith('whsec_') ? 'whsec_' : '';
  return `${prefix}${secret.slice(prefix.length, prefix.length + 4)}…`;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

class SafeHtml {
  constructor(readonly value: string) {}
}

function raw(value: string): SafeHtml {
  return new SafeHtml(value);
}

/** Template tag: interpolations are escaped unless they are SafeHtml (or arrays of it). */
function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  values.forEach((value, i) => {
    out += interpolate(value) + strings[i + 1];
  });
  return new SafeHtml(out);
}

function interpolate(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(interpolate).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
code, pre { font: 12px/1.4 ui-monospace, monospace; }
pre { background: #fff; border: 1px solid #ddd; padding: .5rem; overflow: auto; max-height: 30rem;
  white-space: pre-wrap; word-break: break-all; }
.muted { color: #777; } .error { color: #fff; background: #b00020; padding: .5rem; }
.delivery { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: .4rem .6rem;
  margin: .4rem 0; }
.line { display: flex; flex-wrap: wrap; gap: .3rem .9rem; align-items: baseline; }
.badge { font-weight: 600; padding: 0 .4rem; border-radius: 3px; color: #fff; }
.badge.ok { background: #1b7f3a; } .badge.bad { background: #b00020; } .badge.none { background: #777; }
.why { color: #b00020; } .status.ok { color: #1b7f3a; } .status.warn { color: #a15c00; }
.status.bad { color: #b00020; } summary { cursor: pointer; color: #555; }
`;
