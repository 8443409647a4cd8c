import type { DeliveryResponse as ReceivedDelivery } from '@receiver/delivery';
import { TestProject as Project } from '@app/testing';
import { FanOutService, keyId } from '@app/webhooks';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { sleep, until } from '../support/fixtures';
import { RunningReceiverApp, startReceiverApp } from '../support/receiver-app';
import { TestReceivers } from '../support/subscriber';
import { Stack, startStack } from '../support/stack';

type Json = Record<string, any>;

/**
 * `POST /webhooks/{id}/test`: a signed `webhook.test` event to that one webhook, through
 * the real delivery path (delivery row, queue, circuit breaker, signed POST, attempts),
 * with the real api and worker, PostgreSQL, Redis and HTTP receivers on 127.0.0.1.
 */
describe('webhook test event (e2e)', () => {
  jest.setTimeout(60000);

  let stack: Stack;
  let api: RunningApi;
  let db: DataSource;
  const receivers = new TestReceivers();

  beforeAll(async () => {
    stack = await startStack({ WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '1000' });
    ({ api, db } = stack);
  });
  afterAll(async () => {
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const createWebhook = async (p: Project, body: Json) =>
    (await http().post(`/projects/${p.projectId}/webhooks`).set(p.headers).send(body).expect(201))
      .body as Json;
  const sendTest = (p: Project, webhookId: string) =>
    http().post(`/webhooks/${webhookId}/test`).set(p.headers);
  const delivery = async (p: Project, id: string) =>
    (await http().get(`/webhook-deliveries/${id}`).set(p.headers).expect(200)).body as Json;
  const deliveryUntil = (p: Project, id: string, done: (d: Json) => boolean) =>
    until(`delivery ${id}`, () => delivery(p, id), { done, timeoutMs: 20000, everyMs: 50 });
  const testEvents = async (p: Project) =>
    (await db.query(
      `SELECT id, alert_id, dispatched_at FROM alert_events
          WHERE project_id = $1 AND type = 'webhook.test'`,
      [p.projectId],
    )) as Array<{ id: string; alert_id: string | null; dispatched_at: Date | null }>;

  it('sends a signed webhook.test to that webhook only, whatever its event types', async () => {
    const p = await api.tenants.newProject();
    const [target, other] = [await receivers.start(), await receivers.start()];
    // Subscribed to resolved alerts only: a test still goes to it. The other webhook takes
    // every type and must get nothing.
    const hook = await createWebhook(p, { url: target.url, event_types: ['alert.resolved'] });
    await createWebhook(p, { url: other.url });

    const res = await sendTest(p, hook.id).expect(202);
    expect(res.body).toMatchObject({
      id: expect.any(String),
      event_id: expect.any(String),
      webhook_id: hook.id,
      project_id: p.projectId,
      event_type: 'webhook.test',
      status: 'pending',
      attempts: 0,
    });

    const [got] = await target.waitFor(1);
    const body = new Webhook(hook.secret).verify(got.body, got.headers) as Json;
    expect(body).toEqual({
      type: 'webhook.test',
      timestamp: expect.any(String),
      data: {
        webhook_id: hook.id,
        project_id: p.projectId,
        message: expect.stringContaining('test event'),
        sent_at: body.timestamp,
      },
    });
    expect(got.headers['webhook-id']).toBe(res.body.event_id);
    expect(got.headers['webhook-key-ids']).toBe(keyId(hook.secret));

    const done = await deliveryUntil(p, res.body.id, (d) => d.status === 'succeeded');
    expect(done).toMatchObject({ attempts: 1, last_status_code: 204, event_type: 'webhook.test' });
    const attempts = (
      await http().get(`/webhook-deliveries/${res.body.id}/attempts`).set(p.headers).expect(200)
    ).body.items;
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, status_code: 204 })]);

    // The event has no alert and was written dispatched: the outbox relay (every second)
    // never hands it to the fan-out.
    const [event] = await testEvents(p);
    expect(event).toMatchObject({ id: res.body.event_id, alert_id: null });
    expect(event.dispatched_at).not.toBeNull();
    await sleep(1500);
    expect(other.received).toEqual([]);
    const all = (
      await http().get(`/projects/${p.projectId}/webhook-deliveries`).set(p.headers).expect(200)
    ).body.items as Json[];
    expect(all.map((d) => d.id)).toEqual([res.body.id]);
  });

  it('is retried on the schedule like any delivery, every attempt recorded', async () => {
    const p = await api.tenants.newProject();
    const rx = await receivers.start();
    rx.respond = (r) => (r.n === 1 ? { status: 503, body: 'warming up' } : { status: 200 });
    const hook = await createWebhook(p, { url: rx.url });
    const res = await sendTest(p, hook.id).expect(202);
    await deliveryUntil(p, res.body.id, (d) => d.status === 'succeeded');
    const got = await rx.waitFor(2);
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set([res.body.event_id]));
    const attempts = (
      await http().get(`/webhook-deliveries/${res.body.id}/attempts`).set(p.headers).expect(200)
    ).body.items;
    expect(attempts).toEqual([
      expect.objectContaining({ attempt: 1, status_code: 503, response_excerpt: 'warming up' }),
      expect.objectContaining({ attempt: 2, status_code: 200 }),
    ]);
  });

  it("is refused for a disabled webhook (409), another tenant's or an unknown one (404), and without manage (403)", async () => {
    const p = await api.tenants.newProject();
    const rx = await receivers.start();
    const hook = await createWebhook(p, { url: rx.url, enabled: false });
    const conflict = await sendTest(p, hook.id).expect(409);
    expect(conflict.body.message).toMatch(/disabled/);
    expect(await testEvents(p)).toEqual([]);

    const stranger = await api.tenants.newProject();
    await sendTest(stranger, hook.id).expect(404);
    await sendTest(p, '00000000-0000-4000-8000-000000000000').expect(404);
    await sendTest(p, 'not-a-uuid').expect(404);
    const reader = await api.tenants.newKey(p.projectId, ['read']);
    await http().post(`/webhooks/${hook.id}/test`).set({ 'X-API-Key': reader.key }).expect(403);

    await http().post(`/webhooks/${hook.id}/enable`).set(p.headers).expect(200);
    await sendTest(p, hook.id).expect(202);
    await rx.waitFor(1);
    expect(JSON.parse(rx.received[0].body).type).toBe('webhook.test');
  });

  it('a fan-out handed a test event (by hand) adds no delivery, even for a webhook taking every type', async () => {
    const p = await api.tenants.newProject();
    const rx = await receivers.start();
    const hook = await createWebhook(p, { url: rx.url });
    const bystander = await createWebhook(p, { url: rx.url });
    const res = await sendTest(p, hook.id).expect(202);
    await rx.waitFor(1);
    // The stored event types are checked at creation; make the bystander take any type.
    await db.query(`UPDATE webhooks SET event_types = $2 WHERE id = $1`, [
      bystander.id,
      ['alert.created', 'webhook.test'],
    ]);
    expect(await stack.worker.app.get(FanOutService).fanOut(res.body.event_id)).toBe(0);
    const [{ n }] = await db.query(
      `SELECT count(*)::int AS n FROM webhook_deliveries WHERE event_id = $1`,
      [res.body.event_id],
    );
    expect(n).toBe(1);
  });

  describe('at the local receiver (apps/receiver)', () => {
    let receiver: RunningReceiverApp;
    const otherSecret = `whsec_${randomBytes(32).toString('base64')}`;

    beforeAll(async () => {
      receiver = await startReceiverApp({ RECEIVER_SECRETS: otherSecret });
    });
    afterAll(() => receiver.close());

    const received = async () =>
      (await (await fetch(`${receiver.url}/deliveries.json`)).json()) as ReceivedDelivery[];

    it('reads "unknown secret" (naming its key) until the webhook\'s secret is added, then verified', async () => {
      const p = await api.tenants.newProject();
      const hook = await createWebhook(p, { url: `${receiver.url}/` });
      const res = await sendTest(p, hook.id).expect(202);
      const [got] = await until('the test at the receiver', received, {
        done: (l) => l.some((d) => d.headers['webhook-id'] === res.body.event_id),
        timeoutMs: 20000,
        everyMs: 50,
      });
      expect(got.type).toBe('webhook.test');
      expect(got.verification).toEqual({
        result: 'invalid',
        reason: 'unknown secret',
        key_ids: [keyId(hook.secret)],
      });
      const page = await (await fetch(`${receiver.url}/?refresh=off`)).text();
      expect(page.replace(/\s+/g, ' ')).toContain(
        `signed with key ${keyId(hook.secret)}, which no secret here has`,
      );

      const added = await fetch(`${receiver.url}/_secrets`, {
        method: 'POST',
        body: new URLSearchParams({ secret: hook.secret }),
        redirect: 'manual',
      });
      expect(added.status).toBe(303);
      expect((await received())[0].verification).toEqual({ result: 'verified', secret_index: 1 });
    });
  });
});
