import { isolatedRun, testRunEnv, TestProject as Project } from '@app/testing';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send, until } from '../support/fixtures';
import { TestReceivers } from '../support/subscriber';
import { Stack, startStack } from '../support/stack';
import { Pipeline, RunningWorker, startWorker } from '../support/worker';

const at = clock(Date.UTC(2025, 0, 1, 12));
type Json = Record<string, any>;

/**
 * Webhooks end to end: the real api and worker, PostgreSQL, Redis and HTTP receivers on
 * 127.0.0.1. Signatures are checked with the `standardwebhooks` package, an
 * implementation we did not write. The test environment retries every 0.2 s.
 */
describe('webhooks (e2e)', () => {
  jest.setTimeout(60000);

  let stack: Stack;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;
  const receivers = new TestReceivers();
  // A high threshold: these tests fail deliveries on purpose and must not trip circuits.
  const env = { WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '1000' };

  beforeAll(async () => {
    stack = await startStack(env);
    ({ api, pipeline, db } = stack);
  });
  afterAll(async () => {
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const receiver = () => receivers.start();
  const createWebhook = async (p: Project, body: Json) =>
    (await http().post(`/projects/${p.projectId}/webhooks`).set(p.headers).send(body).expect(201))
      .body as Json;
  const hotRule = (p: Project, body: Json = {}) =>
    rule(api, p, { name: 'High Temp', metric: 'temperature', threshold: 80, ...body }).expect(201);
  /** Temperatures of sensor-01 from at(start), ingested and evaluated. */
  const sendAndWait = async (p: Project, values: number[], start = 0) => {
    await send(api, p, 'sensor-01', values, { start, at });
    await pipeline.idle();
  };
  const deliveries = async (p: Project, query: Json = {}) =>
    (
      await http()
        .get(`/projects/${p.projectId}/webhook-deliveries`)
        .query(query)
        .set(p.headers)
        .expect(200)
    ).body.items as Json[];
  /** Polls until the project's deliveries satisfy `done`. */
  const deliveriesUntil = (p: Project, done: (d: Json[]) => boolean) =>
    until(`deliveries of project ${p.projectId}`, () => deliveries(p), {
      done,
      timeoutMs: 20000,
      everyMs: 50,
    });
  /**
   * Waits until the fan-out has handled `n` alert events of the project: whatever
   * deliveries they make exist from then on.
   */
  const fannedOut = (p: Project, n: number) =>
    until(
      `${n} alert events of project ${p.projectId} dispatched`,
      async () =>
        (
          await db.query(
            `SELECT count(*)::int AS n FROM alert_events WHERE project_id = $1 AND dispatched_at IS NOT NULL`,
            [p.projectId],
          )
        )[0].n as number,
      { done: (dispatched) => dispatched >= n, timeoutMs: 20000, everyMs: 50 },
    );
  const attempts = async (p: Project, deliveryId: string) =>
    (await http().get(`/webhook-deliveries/${deliveryId}/attempts`).set(p.headers).expect(200)).body
      .items as Json[];
  const verify = (secret: string, r: { body: string; headers: Record<string, string> }) =>
    new Webhook(secret).verify(r.body, r.headers) as Json;

  describe('subscriptions API', () => {
    it('creates with a whsec_ secret shown once, then reads, lists, patches and deletes', async () => {
      const p = await api.tenants.newProject();
      const created = await createWebhook(p, {
        url: 'https://hooks.example.com/a',
        description: 'ops',
        event_types: ['alert.created'],
      });
      expect(created).toMatchObject({
        url: 'https://hooks.example.com/a',
        description: 'ops',
        event_types: ['alert.created'],
        enabled: true,
        project_id: p.projectId,
      });
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(created.secret.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);

      const got = (await http().get(`/webhooks/${created.id}`).set(p.headers).expect(200)).body;
      expect(got).not.toHaveProperty('secret');
      expect(JSON.stringify(got)).not.toContain(created.secret.slice(6));
      const { secret: _secret, ...withoutSecret } = created;
      expect(got).toEqual(withoutSecret);

      const defaults = await createWebhook(p, { url: 'https://hooks.example.com/b' });
      expect(defaults.event_types).toEqual([
        'alert.created',
        'alert.acknowledged',
        'alert.resolved',
      ]);
      const list = (
        await http().get(`/projects/${p.projectId}/webhooks`).set(p.headers).expect(200)
      ).body;
      expect(list.items.map((w: Json) => w.id)).toEqual([created.id, defaults.id]);
      expect(JSON.stringify(list)).not.toContain('whsec_');

      await http()
        .patch(`/webhooks/${created.id}`)
        .set(p.headers)
        .send({ description: 'x\u0000' })
        .expect(422);
      const patched = await http()
        .patch(`/webhooks/${created.id}`)
        .set(p.headers)
        .send({
          url: 'https://hooks.example.com/c',
          description: null,
          event_types: ['alert.resolved'],
        })
        .expect(200);
      expect(patched.body).toMatchObject({
        url: 'https://hooks.example.com/c',
        description: null,
        event_types: ['alert.resolved'],
      });

      const disabled = await http()
        .post(`/webhooks/${created.id}/disable`)
        .set(p.headers)
        .expect(200);
      expect(disabled.body).toMatchObject({
        enabled: false,
        disabled_reason: 'disabled by a user',
      });
      const enabled = await http()
        .post(`/webhooks/${created.id}/enable`)
        .set(p.headers)
        .expect(200);
      expect(enabled.body).toMatchObject({ enabled: true, disabled_reason: null });

      const circuit = await http()
        .get(`/webhooks/${created.id}/circuit-status`)
        .set(p.headers)
        .expect(200);
      expect(circuit.body).toEqual({
        state: 'closed',
        consecutive_failures: 0,
        opened_at: null,
        next_attempt_at: null,
      });

      await http().delete(`/webhooks/${created.id}`).set(p.headers).expect(204);
      await http().get(`/webhooks/${created.id}`).set(p.headers).expect(404);
      await http().delete(`/webhooks/${created.id}`).set(p.headers).expect(404);
    });

    it.each([
      ['no url', {}, 'url'],
      ['ftp url', { url: 'ftp://example.com/x' }, 'url'],
      ['not a url', { url: 'hooks' }, 'url'],
      ['credentials in the url', { url: 'https://u:p@example.com/' }, 'url'],
      ['cloud metadata', { url: 'http://169.254.169.254/latest' }, 'url'],
      ['link-local IPv6', { url: 'http://[fe80::1]/' }, 'url'],
      ['unspecified', { url: 'http://0.0.0.0:9000/' }, 'url'],
      [
        'unknown event type',
        { url: 'https://e.com/', event_types: ['alert.exploded'] },
        'event_types',
      ],
      ['empty event types', { url: 'https://e.com/', event_types: [] }, 'event_types'],
      [
        'repeated event type',
        { url: 'https://e.com/', event_types: ['alert.created', 'alert.created'] },
        'event_types',
      ],
      ['null enabled', { url: 'https://e.com/', enabled: null }, 'enabled'],
      ['NUL in the description', { url: 'https://e.com/', description: 'a\u0000b' }, 'description'],
      [
        'a bell in the description',
        { url: 'https://e.com/', description: 'a\u0007' },
        'description',
      ],
      ['url too long', { url: `https://e.com/${'x'.repeat(2100)}` }, 'url'],
    ])('refuses %s with a 422 naming the field', async (_name, body, field) => {
      const p = await api.tenants.newProject();
      const res = await http().post(`/projects/${p.projectId}/webhooks`).set(p.headers).send(body);
      expect(res.status).toBe(422);
      expect(res.body.details.map((d: Json) => d.field)).toContain(field);
    });

    it('refuses loopback and private URLs unless WEBHOOK_ALLOW_PRIVATE_NETWORKS is on', async () => {
      const strict = await startApi({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' });
      try {
        const p = await strict.tenants.newProject();
        for (const url of [
          'http://127.1/',
          'http://2130706433/',
          'http://0x7f.1/',
          'http://[::1]/',
          'http://[::ffff:127.0.0.1]/',
          'http://localhost:9000/',
          'http://10.0.0.5/',
          'http://100.64.0.1/',
          'http://[fd00::1]/',
        ]) {
          const res = await request(strict.server)
            .post(`/projects/${p.projectId}/webhooks`)
            .set(p.headers)
            .send({ url });
          expect({ url, status: res.status, message: res.body.message }).toEqual({
            url,
            status: 422,
            message: expect.stringMatching(/destination refused/),
          });
        }
        await request(strict.server)
          .post(`/projects/${p.projectId}/webhooks`)
          .set(p.headers)
          .send({ url: 'https://hooks.example.com/ok' })
          .expect(201);
      } finally {
        await strict.close();
      }
    });

    it('needs the manage scope to change and the read scope to look', async () => {
      const owner = await api.tenants.newProject();
      const w = await createWebhook(owner, { url: 'https://hooks.example.com/s' });
      const reader = await api.tenants.newKey(owner.projectId, ['read']);
      const r = { 'X-API-Key': reader.key };
      await http().get(`/webhooks/${w.id}`).set(r).expect(200);
      await http().get(`/projects/${owner.projectId}/webhook-deliveries`).set(r).expect(200);
      await http()
        .post(`/projects/${owner.projectId}/webhooks`)
        .set(r)
        .send({ url: 'https://e.com/' })
        .expect(403);
      await http().post(`/webhooks/${w.id}/disable`).set(r).expect(403);
      await http().post(`/webhooks/${w.id}/rotate-secret`).set(r).send({}).expect(403);
    });
  });

  describe('delivery', () => {
    it('the reference example: rule → telemetry → alert → a signed webhook that standardwebhooks verifies', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      const hook = await createWebhook(p, { url: rx.url });
      const rule = (
        await hotRule(p, { window_n: 5, required_k: 5, cooldown_seconds: 300, scope: 'ALL' })
      ).body;
      await sendAndWait(p, [95, 96, 97, 98, 99]);

      const [got] = await rx.waitFor(1);
      expect(got.headers['content-type']).toBe('application/json');
      const body = verify(hook.secret, got);
      const alert = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
        .body.items[0];
      expect(body).toMatchObject({
        type: 'alert.created',
        timestamp: expect.any(String),
        data: {
          project_id: p.projectId,
          rule: { id: rule.id, name: 'High Temp' },
          device: { id: alert.device_id, external_id: 'sensor-01' },
          alert: { id: alert.id, status: 'open', triggered_at: at(4) },
        },
      });
      expect(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(
        30,
      );

      const [d] = await deliveriesUntil(p, (l) => l.length === 1 && l[0].status === 'succeeded');
      expect(d).toMatchObject({
        webhook_id: hook.id,
        event_type: 'alert.created',
        status: 'succeeded',
        attempts: 1,
        last_status_code: 204,
        last_error: null,
        next_attempt_at: null,
        delivered_at: expect.any(String),
      });
      // webhook-id is the event id: what a subscriber deduplicates on.
      expect(got.headers['webhook-id']).toBe(d.event_id);
      const [a] = await attempts(p, d.id);
      expect(a).toMatchObject({ attempt: 1, status_code: 204, error: null });
      await http().get(`/webhook-deliveries/${d.id}`).set(p.headers).expect(200);
    });

    it('sends only the event types a webhook subscribed to, and nothing to disabled ones', async () => {
      const p = await api.tenants.newProject();
      const [created, resolved, off] = [await receiver(), await receiver(), await receiver()];
      await createWebhook(p, { url: created.url, event_types: ['alert.created'] });
      await createWebhook(p, { url: resolved.url, event_types: ['alert.resolved'] });
      await createWebhook(p, { url: off.url, enabled: false });
      await hotRule(p);
      await sendAndWait(p, [90, 10]);
      await deliveriesUntil(p, (l) => l.length === 2 && l.every((d) => d.status === 'succeeded'));
      expect(created.received.map((r) => JSON.parse(r.body).type)).toEqual(['alert.created']);
      expect(resolved.received.map((r) => JSON.parse(r.body).type)).toEqual(['alert.resolved']);
      expect(off.received).toEqual([]);
    });

    it('retries a failing endpoint until it answers 2xx, with the same webhook-id every time', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      rx.respond = (r) => (r.n <= 2 ? { status: 500, body: `boom ${r.n}` } : { status: 200 });
      const hook = await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90]);

      const got = await rx.waitFor(3);
      expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
      for (const r of got) expect(verify(hook.secret, r).type).toBe('alert.created');
      const [d] = await deliveriesUntil(p, (l) => l[0]?.status === 'succeeded');
      expect(d).toMatchObject({ attempts: 3, last_status_code: 200, last_error: null });
      expect(await attempts(p, d.id)).toEqual([
        expect.objectContaining({ attempt: 1, status_code: 500, response_excerpt: 'boom 1' }),
        expect.objectContaining({ attempt: 2, status_code: 500, response_excerpt: 'boom 2' }),
        expect.objectContaining({ attempt: 3, status_code: 200 }),
      ]);
    });

    it('gives up after the schedule, and a manual retry starts it over (same webhook-id)', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      let healthy = false;
      rx.respond = () => (healthy ? { status: 202 } : { status: 502 });
      await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90]);
      // The test schedule has 4 retries: 5 attempts, then failed.
      const [failed] = await deliveriesUntil(p, (l) => l[0]?.status === 'failed');
      expect(failed).toMatchObject({
        attempts: 5,
        last_status_code: 502,
        last_error: 'endpoint answered 502',
        next_attempt_at: null,
        delivered_at: null,
      });
      expect(rx.received).toHaveLength(5);
      await http()
        .get(`/projects/${p.projectId}/webhook-deliveries`)
        .query({ status: 'failed' })
        .set(p.headers)
        .expect(200);

      healthy = true;
      const retried = await http()
        .post(`/webhook-deliveries/${failed.id}/retry`)
        .set(p.headers)
        .expect(202);
      expect(retried.body).toMatchObject({ id: failed.id, status: 'pending' });
      const [done] = await deliveriesUntil(p, (l) => l[0]?.status === 'succeeded');
      expect(done).toMatchObject({ attempts: 6, last_status_code: 202 });
      expect(new Set(rx.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
      await http()
        .post(`/webhook-deliveries/00000000-0000-4000-8000-000000000000/retry`)
        .set(p.headers)
        .expect(404);
    });

    it('a manual retry made while the last scheduled attempt is in flight is not lost', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      let retried = false;
      // Attempt 5 (the schedule's last) is slow: the retry lands while it is in flight.
      rx.respond = (r) =>
        r.n === 5 ? { status: 500, delayMs: 700 } : retried ? { status: 200 } : { status: 500 };
      await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90]);
      await until(
        'attempt 5 in flight',
        () => rx.received.length === 5 && rx.received[4].endedAt === undefined,
        { timeoutMs: 20000, everyMs: 50 },
      );
      const [inFlight] = await deliveries(p);
      retried = true;
      await http().post(`/webhook-deliveries/${inFlight.id}/retry`).set(p.headers).expect(202);
      const [d] = await deliveriesUntil(p, (l) => l[0]?.status !== 'pending');
      expect(d).toMatchObject({ status: 'succeeded', attempts: 6, last_status_code: 200 });
      expect((await attempts(p, d.id)).map((a) => a.status_code)).toEqual([
        500, 500, 500, 500, 500, 200,
      ]);
    });

    it('stops and disables the webhook when the endpoint answers 410 Gone', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      rx.respond = () => ({ status: 410 });
      const hook = await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90]);
      const [d] = await deliveriesUntil(p, (l) => l[0]?.status === 'failed');
      expect(d).toMatchObject({ attempts: 1, last_status_code: 410 });
      expect(d.last_error).toMatch(/410 Gone/);
      const w = (await http().get(`/webhooks/${hook.id}`).set(p.headers).expect(200)).body;
      expect(w.enabled).toBe(false);
      expect(w.disabled_reason).toMatch(/410 Gone/);

      // Later events make no deliveries; a retry is refused until the webhook is enabled.
      await sendAndWait(p, [10, 90], 1);
      // Fanned out (created, resolved, created again): a delivery they made would exist now.
      await fannedOut(p, 3);
      expect(await deliveries(p)).toHaveLength(1);
      expect(rx.received).toHaveLength(1);
      await http().post(`/webhook-deliveries/${d.id}/retry`).set(p.headers).expect(409);
    });

    it('waits as long as Retry-After says on 429 and 503', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      rx.respond = (r) =>
        r.n === 1
          ? { status: 503, headers: { 'retry-after': '2' } }
          : r.n === 2
            ? { status: 429, headers: { 'retry-after': '1' } }
            : { status: 204 };
      await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90]);
      const got = await rx.waitFor(3);
      // The schedule alone would retry after 0.2 s (±20%).
      expect(got[1].startedAt - got[0].endedAt!).toBeGreaterThanOrEqual(1900);
      expect(got[2].startedAt - got[1].endedAt!).toBeGreaterThanOrEqual(900);
      const [d] = await deliveriesUntil(p, (l) => l[0]?.status === 'succeeded');
      expect(d.attempts).toBe(3);
    });

    it('signs with both secrets while a rotated-out secret is still valid', async () => {
      const p = await api.tenants.newProject();
      const rx = await receiver();
      const hook = await createWebhook(p, { url: rx.url, event_types: ['alert.created'] });
      const rotated = (
        await http()
          .post(`/webhooks/${hook.id}/rotate-secret`)
          .set(p.headers)
          .send({ previous_secret_ttl_seconds: 3600 })
          .expect(200)
      ).body;
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(hook.secret);
      expect(Date.parse(rotated.previous_secret_expires_at) - Date.now()).toBeGreaterThan(3500e3);
      await hotRule(p);
      await sendAndWait(p, [90]);
      const [got] = await rx.waitFor(1);
      expect(got.headers['webhook-signature'].split(' ')).toHaveLength(2);
      expect(verify(hook.secret, got).type).toBe('alert.created');
      expect(verify(rotated.secret, got).type).toBe('alert.created');

      // Retired at once: only the new secret signs.
      const again = (
        await http()
          .post(`/webhooks/${hook.id}/rotate-secret`)
          .set(p.headers)
          .send({ previous_secret_ttl_seconds: 0 })
          .expect(200)
      ).body;
      expect(again.previous_secret_expires_at).toBeNull();
      await sendAndWait(p, [10, 90], 1);
      const [, second] = await rx.waitFor(2);
      expect(second.headers['webhook-signature'].split(' ')).toHaveLength(1);
      expect(verify(again.secret, second).type).toBe('alert.created');
      expect(() => verify(rotated.secret, second)).toThrow();
    });

    it('lists deliveries newest first with filters and a cursor walk', async () => {
      const p = await api.tenants.newProject();
      const [ok, bad] = [await receiver(), await receiver()];
      bad.respond = () => ({ status: 500 });
      const good = await createWebhook(p, { url: ok.url });
      const failing = await createWebhook(p, { url: bad.url, event_types: ['alert.created'] });
      await hotRule(p);
      await sendAndWait(p, [90, 10, 90, 10]);
      const all = await deliveriesUntil(
        p,
        (l) => l.length === 6 && l.every((d) => d.status !== 'pending'),
      );
      const sorted = [...all].sort((a, b) =>
        a.created_at === b.created_at
          ? a.id < b.id
            ? 1
            : -1
          : a.created_at < b.created_at
            ? 1
            : -1,
      );
      expect(all.map((d) => d.id)).toEqual(sorted.map((d) => d.id));
      expect((await deliveries(p, { webhook_id: good.id })).length).toBe(4);
      expect((await deliveries(p, { webhook_id: failing.id, status: 'failed' })).length).toBe(2);
      expect((await deliveries(p, { status: 'pending' })).length).toBe(0);

      const walked: string[] = [];
      let cursor: string | undefined;
      do {
        const page = (
          await http()
            .get(`/projects/${p.projectId}/webhook-deliveries`)
            .query({ limit: 2, ...(cursor && { cursor }) })
            .set(p.headers)
            .expect(200)
        ).body;
        walked.push(...page.items.map((d: Json) => d.id));
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      expect(walked).toEqual(all.map((d) => d.id));

      await http()
        .get(`/projects/${p.projectId}/webhook-deliveries`)
        .query({ status: 'lost' })
        .set(p.headers)
        .expect(422);
      await http()
        .get(`/projects/${p.projectId}/webhook-deliveries`)
        .query({ cursor: 'bm9wZQ' })
        .set(p.headers)
        .expect(422);
    });
  });

  it('a worker shutting down finishes the delivery it is sending', async () => {
    // A database of its own too: the other workers of the run relay every undispatched
    // event of the database they share, and one of them could send this delivery instead.
    const own = await isolatedRun('wh-drain');
    const dEnv = own.env;
    const dApi = await startApi(dEnv);
    const dWorker = await startWorker(dEnv);
    try {
      const p = await dApi.tenants.newProject();
      const rx = await receiver();
      rx.respond = () => ({ status: 200, delayMs: 800 });
      await request(dApi.server)
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: rx.url, event_types: ['alert.created'] })
        .expect(201);
      await rule(dApi, p, { threshold: 1 }).expect(201);
      await send(dApi, p, 'd', [5], { metric: 't', at });
      await until('the delivery sent', () => rx.received.length > 0, {
        timeoutMs: 10000,
        everyMs: 25,
      });
      expect(rx.received).toHaveLength(1);
      await dWorker.close(); // SIGTERM while the POST is in flight

      const [d] = (
        await request(dApi.server)
          .get(`/projects/${p.projectId}/webhook-deliveries`)
          .set(p.headers)
          .expect(200)
      ).body.items;
      expect(d).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 200 });
    } finally {
      await dApi.close();
      await own.drop();
    }
  });

  /**
   * Three workers share one circuit per endpoint through Redis: it opens after 5
   * failures, nothing goes out while it is open, then exactly one probe; a failed probe
   * re-opens it, a good one closes it and the waiting deliveries all go out.
   */
  describe('circuit breaker across three workers', () => {
    let cApi: RunningApi;
    const workers: RunningWorker[] = [];
    let cPipeline: Pipeline;
    // Long enough that a loaded machine (CI runs this on a Redis Cluster after the whole
    // suite) still sees the circuit open and queues the next events inside one period. At
    // 2 s, one CI run saw only "closed, 0 failures" after the fifth failure: a status request
    // slower than open, probe, open, probe (about 5.5 s at 2 s) leaves the cycle unseen.
    const recoveryMs = 6000;
    const cEnv = {
      REDIS_PREFIX: `${testRunEnv().redisPrefix}:circuit`,
      WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '5',
      WEBHOOK_CIRCUIT_RECOVERY_SECONDS: String(recoveryMs / 1000),
      WEBHOOK_RETRY_SCHEDULE: Array(12).fill('0.2').join(','),
    };

    beforeAll(async () => {
      cApi = await startApi(cEnv);
      for (let i = 0; i < 3; i++) workers.push(await startWorker(cEnv));
      cPipeline = new Pipeline(cEnv);
    });
    afterAll(async () => {
      await Promise.all(workers.map((w) => w.close()));
      await cApi.close();
      await cPipeline.close();
    });

    it('opens after 5 failures, holds every delivery, probes once, and closes on success', async () => {
      const h = () => request(cApi.server);
      const p = await cApi.tenants.newProject();
      const rx = await receiver();
      // 1-5: fail (opens). 6: the first probe, slow and failing (re-opens). 7: the second
      // probe, slow and good (closes). Then everything succeeds.
      rx.respond = (r) =>
        r.n <= 5
          ? { status: 500 }
          : r.n === 6
            ? { status: 500, delayMs: 400 }
            : r.n === 7
              ? { status: 200, delayMs: 400 }
              : { status: 200 };
      const hook = (
        await h()
          .post(`/projects/${p.projectId}/webhooks`)
          .set(p.headers)
          .send({ url: rx.url, event_types: ['alert.created'] })
          .expect(201)
      ).body;
      await rule(cApi, p, { metric: 'temperature', threshold: 80 }).expect(201);
      const push = async (values: number[], start: number) => {
        await send(cApi, p, 'd', values, { start, at });
        await cPipeline.idle();
      };
      const status = async () =>
        (await h().get(`/webhooks/${hook.id}/circuit-status`).set(p.headers).expect(200)).body;
      // What the circuit said, with how many requests the endpoint had seen by then.
      const seen = async () => ({ ...(await status()), requests: rx.received.length });
      const list = async () =>
        (await h().get(`/projects/${p.projectId}/webhook-deliveries`).set(p.headers).expect(200))
          .body.items as Json[];

      await push([90], 0);
      await rx.waitFor(5);
      const s = await until('the circuit open', seen, {
        done: (c) => c.state === 'open',
        timeoutMs: recoveryMs,
        everyMs: 20,
      });
      expect(s).toMatchObject({ state: 'open', consecutive_failures: 5, requests: 5 });
      expect(Date.parse(s.next_attempt_at) - Date.parse(s.opened_at)).toBe(recoveryMs);

      // Six more events while it is open: nothing may go out until the recovery time.
      await push([10, 90, 10, 90, 10, 90, 10, 90, 10, 90, 10, 90], 1);
      // Each delivery has met the open circuit: a worker took it and postponed it to the probe.
      const waiting = await until('7 deliveries postponed by the open circuit', list, {
        done: (l) =>
          l.length === 7 &&
          l.every((d) => Date.parse(d.next_attempt_at) >= Date.parse(s.next_attempt_at)),
        timeoutMs: recoveryMs,
        everyMs: 20,
      });
      expect(rx.received).toHaveLength(5);
      expect(waiting).toHaveLength(7);
      expect(waiting.every((d) => d.status === 'pending')).toBe(true);

      const got = await rx.waitFor(13, 30000 + 2 * recoveryMs);
      const [fifth, probe1, probe2, next] = [got[4], got[5], got[6], got[7]];
      // Open for the recovery time, then one probe; while it was out nobody else went.
      expect(probe1.startedAt - fifth.endedAt!).toBeGreaterThanOrEqual(recoveryMs - 100);
      expect(probe2.startedAt).toBeGreaterThanOrEqual(probe1.endedAt!);
      // The failed probe re-opened it for another full period.
      expect(probe2.startedAt - probe1.endedAt!).toBeGreaterThanOrEqual(recoveryMs - 100);
      expect(next.startedAt).toBeGreaterThanOrEqual(probe2.endedAt!);

      const done = await until('every delivery succeeded', list, {
        done: (l) => l.every((d) => d.status === 'succeeded'),
        timeoutMs: 15000,
        everyMs: 50,
      });
      expect(done.map((d) => d.status)).toEqual(Array(7).fill('succeeded'));
      // Nothing lost, nothing doubled: 7 events, 13 requests (5 + 2 probes + 6).
      expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(7);
      expect(got).toHaveLength(13);
      expect(await status()).toMatchObject({ state: 'closed', consecutive_failures: 0 });
      // Above the file's 60 s: on a slow run its own waits (two recovery periods and more)
      // must be the ones to say what did not happen.
    }, 120_000);
  });
});
