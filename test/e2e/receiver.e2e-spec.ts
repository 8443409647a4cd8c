import { keyId } from '@app/webhooks/signature';
import type { DeliveryResponse } from '@receiver/delivery';
import { NO_MATCH } from '@receiver/verify-delivery';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { until } from '../support/fixtures';
import { exited, freePort, spawnApp, waitFor } from '../support/processes';
import { RunningReceiverApp, startReceiverApp } from '../support/receiver-app';

/**
 * The local webhook receiver (apps/receiver) over real HTTP: the real module and
 * configureReceiver() in this process, and its main.ts as a child process.
 */
const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;
const A = newSecret();
const B = newSecret();

function alertBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: 'alert.created',
    timestamp: new Date().toISOString(),
    data: { alert_id: randomUUID(), ...extra },
  });
}

/**
 * Standard Webhooks headers for `body`, signed by each of `secrets` (rotation: several),
 * with `webhook-key-ids` naming them as our sender does (unless `keyIds: false`).
 */
function signed(
  secrets: string[],
  body: string,
  opts: { id?: string; at?: Date; keyIds?: boolean } = {},
): Record<string, string> {
  const id = opts.id ?? `msg_${randomUUID()}`;
  const at = opts.at ?? new Date();
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
    ...(opts.keyIds === false ? {} : { 'webhook-key-ids': secrets.map(keyId).join(' ') }),
  };
}

function post(
  receiver: RunningReceiverApp,
  path: string,
  body: string,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${receiver.url}${path}`, { method: 'POST', body, headers, signal });
}

async function deliveries(receiver: RunningReceiverApp): Promise<DeliveryResponse[]> {
  const res = await fetch(`${receiver.url}/deliveries.json`);
  expect(res.status).toBe(200);
  return (await res.json()) as DeliveryResponse[];
}

async function addSecret(receiver: RunningReceiverApp, secret: string): Promise<Response> {
  return fetch(`${receiver.url}/_secrets`, {
    method: 'POST',
    body: new URLSearchParams({ secret }),
    redirect: 'manual',
  });
}

describe('webhook receiver', () => {
  let receiver: RunningReceiverApp;

  beforeAll(async () => {
    // A is secret #0 and B #1, given both ways the variable allows.
    receiver = await startReceiverApp({ RECEIVER_SECRETS: `${A}, ${B}` });
  });
  afterAll(() => receiver.close());
  beforeEach(async () => {
    expect((await fetch(`${receiver.url}/deliveries`, { method: 'DELETE' })).status).toBe(204);
  });

  it('answers /health', async () => {
    const res = await fetch(`${receiver.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers 204 and records a signed delivery as verified, naming the secret', async () => {
    const body = alertBody();
    const headers = signed([B], body);
    const res = await post(receiver, '/', body, headers);
    expect(res.status).toBe(204);

    const [delivery, ...rest] = await deliveries(receiver);
    expect(rest).toHaveLength(0);
    expect(delivery).toMatchObject({
      path: '/',
      type: 'alert.created',
      status: 204,
      body_json: true,
      body_bytes: Buffer.byteLength(body),
      headers: {
        'webhook-id': headers['webhook-id'],
        'webhook-timestamp': headers['webhook-timestamp'],
        'webhook-signature': headers['webhook-signature'],
      },
      verification: { result: 'verified', secret_index: 1 },
    });
    expect(delivery.body).toBe(JSON.stringify(JSON.parse(body), null, 2));
    expect(Date.now() - Date.parse(delivery.received_at)).toBeLessThan(10000);
  });

  it('accepts any path, and any one of several signatures (secret rotation)', async () => {
    const body = alertBody();
    const res = await post(receiver, '/hooks/anything', body, signed([newSecret(), A], body));
    expect(res.status).toBe(204);
    const [delivery] = await deliveries(receiver);
    expect(delivery.path).toBe('/hooks/anything');
    expect(delivery.verification).toEqual({ result: 'verified', secret_index: 0 });
  });

  it('says invalid, and why: signature mismatch, unknown secret, stale timestamp, missing headers', async () => {
    const body = alertBody();
    const tampered = body.replace('alert.created', 'alert.resolved');
    await post(receiver, '/', tampered, signed([B], body, { id: 'msg_tampered' }));
    const unknown = newSecret();
    await post(receiver, '/', body, signed([unknown], body, { id: 'msg_unknown_secret' }));
    await post(receiver, '/', body, signed([unknown], body, { id: 'msg_anon', keyIds: false }));
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    await post(receiver, '/', body, signed([A], body, { id: 'msg_old', at: tenMinutesAgo }));
    await post(receiver, '/', body, { 'content-type': 'application/json' });

    const byId = await deliveries(receiver);
    expect(byId.map((d) => [d.headers['webhook-id'] ?? null, d.verification])).toEqual([
      [
        null,
        {
          result: 'invalid',
          reason: 'missing headers: webhook-id, webhook-timestamp, webhook-signature',
        },
      ],
      ['msg_old', { result: 'invalid', reason: 'timestamp too old' }],
      ['msg_anon', { result: 'invalid', reason: NO_MATCH }],
      [
        'msg_unknown_secret',
        { result: 'invalid', reason: 'unknown secret', key_ids: [keyId(unknown)] },
      ],
      ['msg_tampered', { result: 'invalid', reason: 'signature mismatch', secret_index: 1 }],
    ]);
    const page = (await (await fetch(`${receiver.url}/?refresh=off`)).text()).replace(/\s+/g, ' ');
    expect(page).toContain(`signed with key ${keyId(unknown)}, which no secret here has`);
    expect(page).toContain('<code>RECEIVER_SECRETS</code>');
    expect(page).toContain('secret #1 signed it, but the body');
  });

  it('lists deliveries newest first', async () => {
    for (const id of ['msg_first', 'msg_second', 'msg_third']) {
      const body = alertBody();
      expect((await post(receiver, '/', body, signed([A], body, { id }))).status).toBe(204);
    }
    const list = await deliveries(receiver);
    expect(list.map((d) => d.headers['webhook-id'])).toEqual([
      'msg_third',
      'msg_second',
      'msg_first',
    ]);
    expect(list[0].id).toBeGreaterThan(list[1].id);
    expect(Date.parse(list[0].received_at)).toBeGreaterThanOrEqual(Date.parse(list[2].received_at));
  });

  it('keeps the last 200 deliveries', async () => {
    for (let i = 1; i <= 205; i++) await post(receiver, `/n/${i}`, 'x');
    const list = await deliveries(receiver);
    expect(list).toHaveLength(200);
    expect(list[0].path).toBe('/n/205');
    expect(list[199].path).toBe('/n/6');
  });

  it('answers /status/<code> with that code and records it', async () => {
    const body = alertBody();
    const res = await post(receiver, '/status/503', body, signed([A], body));
    expect(res.status).toBe(503);
    expect((await post(receiver, '/status/410', 'gone')).status).toBe(410);

    const [gone, unavailable] = await deliveries(receiver);
    expect(gone).toMatchObject({ path: '/status/410', status: 410 });
    expect(unavailable).toMatchObject({
      path: '/status/503',
      status: 503,
      verification: { result: 'verified', secret_index: 0 },
    });
  });

  it('answers 400 to a bad status code or delay, and still records the request', async () => {
    for (const path of ['/status/600', '/status/99', '/status/abc', '/?delay_ms=soon']) {
      const res = await post(receiver, path, 'x');
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
    }
    expect((await deliveries(receiver)).map((d) => d.status)).toEqual([400, 400, 400, 400]);
  });

  it('holds the answer back for ?delay_ms=, capped at 60 s', async () => {
    const started = Date.now();
    const res = await post(receiver, '/status/500?delay_ms=400', 'x');
    expect(res.status).toBe(500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);

    // Capped, not refused: recorded at once with 60000 while the answer waits.
    const abort = new AbortController();
    const pending = post(receiver, '/?delay_ms=600000', 'x', {}, abort.signal).catch(
      (err: Error) => err.name,
    );
    const [waiting] = await until('the delayed request recorded', () => deliveries(receiver), {
      done: (list) => list.length === 2, // this test's two requests
      everyMs: 25,
    });
    expect(waiting).toMatchObject({ query: 'delay_ms=600000', delay_ms: 60000, status: 204 });
    abort.abort();
    expect(await pending).toBe('AbortError');
  });

  it('refuses a body over 1 MiB with 413', async () => {
    const res = await post(receiver, '/', 'x'.repeat(1024 * 1024 + 1));
    expect(res.status).toBe(413);
    expect((await post(receiver, '/', 'x'.repeat(1024 * 1024))).status).toBe(204);
  });

  it('keeps a body that is not JSON as text', async () => {
    await post(receiver, '/', 'plain <text>', { 'content-type': 'text/plain' });
    const [delivery] = await deliveries(receiver);
    expect(delivery).toMatchObject({ body: 'plain <text>', body_json: false, type: null });
  });

  it('renders the page newest first with badges, escaping everything it received', async () => {
    const body = alertBody({ note: '<script>alert("body")</script>' });
    await post(receiver, '/', body, signed([A], body, { id: 'msg_page_verified' }));
    await post(receiver, '/', body, signed([newSecret()], body, { id: 'msg_page_invalid' }));
    await post(receiver, '/hooks/x', '</pre><script>alert(1)</script>', {
      'webhook-id': '"><img src=x onerror=alert(2)>',
      'content-type': 'text/plain',
    });

    const res = await fetch(`${receiver.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();

    expect(page).not.toMatch(/<script/i);
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(page).toContain('&lt;script&gt;alert(\\&quot;body\\&quot;)&lt;/script&gt;');
    expect(page).toContain('<meta http-equiv="refresh" content="5"');

    const order = ['&quot;&gt;&lt;img', 'msg_page_invalid', 'msg_page_verified'].map((s) =>
      page.indexOf(s),
    );
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(page).toContain('✓ verified');
    expect(page).toContain('✗ invalid');
    // The secrets are listed, but only their first characters.
    expect(page).toContain(`${A.slice(0, 10)}…`);
    expect(page).not.toContain(A);
  });

  it('pauses the auto-refresh on request', async () => {
    const page = await (await fetch(`${receiver.url}/?refresh=off`)).text();
    expect(page).not.toContain('http-equiv="refresh"');
  });

  it('DELETE /deliveries clears the list', async () => {
    await post(receiver, '/', 'x');
    expect(await deliveries(receiver)).toHaveLength(1);
    expect((await fetch(`${receiver.url}/deliveries`, { method: 'DELETE' })).status).toBe(204);
    expect(await deliveries(receiver)).toEqual([]);
  });
});

describe('webhook receiver without a secret', () => {
  let receiver: RunningReceiverApp;

  beforeEach(async () => {
    receiver = await startReceiverApp({ RECEIVER_SECRETS: '' });
  });
  afterEach(() => receiver.close());

  it('says "no secret configured", and verifies again when a secret is added', async () => {
    const body = alertBody();
    await post(receiver, '/', body, signed([A], body, { id: 'msg_good' }));
    await post(receiver, '/', `${body} `, signed([A], body, { id: 'msg_tampered' }));
    expect((await deliveries(receiver)).map((d) => d.verification)).toEqual([
      { result: 'no_secret', reason: 'no secret configured' },
      { result: 'no_secret', reason: 'no secret configured' },
    ]);
    expect(await (await fetch(`${receiver.url}/`)).text()).toContain('? no secret');

    const res = await addSecret(receiver, A);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');

    expect(
      (await deliveries(receiver)).map((d) => [d.headers['webhook-id'], d.verification]),
    ).toEqual([
      ['msg_tampered', { result: 'invalid', reason: 'signature mismatch', secret_index: 0 }],
      ['msg_good', { result: 'verified', secret_index: 0 }],
    ]);

    // Later deliveries are checked against the added secret too.
    await post(receiver, '/', body, signed([A], body));
    expect((await deliveries(receiver))[0].verification).toEqual({
      result: 'verified',
      secret_index: 0,
    });
  });

  it('refuses a malformed secret with 400 and keeps none', async () => {
    const res = await addSecret(receiver, 'not-a-secret!');
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Not added: a secret must be whsec_');
    const body = alertBody();
    await post(receiver, '/', body, signed([A], body));
    expect((await deliveries(receiver))[0].verification.result).toBe('no_secret');
  });
});

describe('webhook receiver process (main.ts)', () => {
  it('starts on RECEIVER_PORT without ADMIN_TOKEN, PostgreSQL or Redis, and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawnApp('receiver', {
      RECEIVER_PORT: String(port),
      RECEIVER_HOST: '127.0.0.1',
      RECEIVER_SECRETS: A,
      ADMIN_TOKEN: '',
      DATABASE_URL: 'nonsense',
      REDIS_URL: 'nonsense',
      LOG_LEVEL: 'info',
    });
    try {
      await waitFor(`http://127.0.0.1:${port}/health`, 200, 30000);
      const body = alertBody();
      const res = await fetch(`http://127.0.0.1:${port}/hooks/process`, {
        method: 'POST',
        body,
        headers: signed([A], body),
      });
      expect(res.status).toBe(204);
      const [delivery] = (await (
        await fetch(`http://127.0.0.1:${port}/deliveries.json`)
      ).json()) as DeliveryResponse[];
      expect(delivery.verification).toEqual({ result: 'verified', secret_index: 0 });
    } finally {
      child.kill('SIGTERM');
    }
    const exit = await exited(child);
    expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
    expect(child.output()).toContain(`receiver listening on http://127.0.0.1:${port}`);
  }, 60000);

  it('exits 1 naming RECEIVER_PORT when it is not a port', async () => {
    const child = spawnApp('receiver', { RECEIVER_PORT: '99999', RECEIVER_SECRETS: '' });
    const exit = await exited(child);
    expect(exit.code).toBe(1);
    expect(child.output()).toContain(
      'receiver: Invalid environment: RECEIVER_PORT: must be a port number 0-65535, got "99999"',
    );
  }, 60000);
});
