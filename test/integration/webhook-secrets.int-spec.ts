import { QUEUES } from '@app/queue';
import { isolatedRun, IsolatedRun } from '@app/testing';
import {
  DeliveryLedgerRepository,
  parseKeyRing,
  resealWebhookSecrets,
  WebhookSecretCodec,
} from '@app/webhooks';
import { Queue } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send } from '../support/fixtures';
import { TestReceiver } from '../support/subscriber';
import { drained, INGEST, openQueue, RunningWorker, startWorker } from '../support/worker';

const key = () => randomBytes(32).toString('base64');
const K1 = `k1:${key()}`;
const K2 = `k2:${key()}`;
const at = clock(Date.UTC(2025, 7, 1));

/**
 * Webhook signing secrets are encrypted at rest (AES-256-GCM, a key id per value): a
 * database dump does not reveal them. Plain rows from before are sealed by the data
 * migration, keys rotate by re-sealing, and a missing key fails the attempt visibly.
 */
describe('webhook secrets at rest (integration)', () => {
  jest.setTimeout(60000);
  let api: RunningApi;
  let worker: RunningWorker;
  let receiver: TestReceiver;
  let db: DataSource;
  let queues: Queue[];
  // Rows sealed with this file's keys are unreadable to the run's other workers (each logs
  // that as an error at boot), and their jobs must not reach them: a database and queues
  // of its own.
  let own: IsolatedRun;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    own = await isolatedRun('secrets');
    env = { ...own.env, WEBHOOK_SECRET_KEYS: K1 };
    api = await startApi(env);
    worker = await startWorker(env);
    receiver = await new TestReceiver().start();
    db = api.app.get(DataSource);
    queues = [openQueue(INGEST, env), openQueue(QUEUES.RULE_EVALUATION, env)];
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
    await receiver.close();
    await Promise.all(queues.map((q) => q.close()));
    await own.drop();
  });

  const http = () => request(api.server);
  let reading = 0;
  const fireAlert = async (p: { headers: Record<string, string>; projectId: string }) => {
    // Each call opens a new alert: a fresh device, one hot reading.
    const device = `d-${reading++}`;
    await send(api, p, device, [9], { metric: 't', at });
    for (const q of queues) await drained(q);
  };
  const setUp = async () => {
    const p = await api.tenants.newProject();
    await rule(api, p).expect(201);
    const hook = (
      await http()
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: receiver.url, event_types: ['alert.created'] })
        .expect(201)
    ).body as { id: string; secret: string };
    return { p, hook };
  };
  const stored = async (id: string) =>
    (await db.query(`SELECT secret, previous_secret FROM webhooks WHERE id = $1`, [id]))[0] as {
      secret: string;
      previous_secret: string | null;
    };
  const ledger = () => worker.app.get(DeliveryLedgerRepository);
  const verifies = (secret: string, r: TestReceiver['received'][number]) =>
    new Webhook(secret).verify(r.body, r.headers);

  it('stores only the sealed secret, and signs with the plain one', async () => {
    const { p, hook } = await setUp();
    const row = await stored(hook.id);
    expect(row.secret).toMatch(/^v1:k1:[A-Za-z0-9_-]+$/);
    expect(row.secret).not.toContain(hook.secret);
    expect(row.secret).not.toContain(hook.secret.slice('whsec_'.length));
    const before = receiver.received.length;
    await fireAlert(p);
    const [got] = (await receiver.waitFor(before + 1)).slice(before);
    expect(() => verifies(hook.secret, got)).not.toThrow();

    // A rotation keeps the old secret sealed too, and both sign meanwhile.
    const rotated = (
      await http().post(`/webhooks/${hook.id}/rotate-secret`).set(p.headers).send({}).expect(200)
    ).body as { secret: string };
    const after = await stored(hook.id);
    expect(after.secret).toMatch(/^v1:k1:/);
    expect(after.previous_secret).toBe(row.secret);
    await fireAlert(p);
    const [next] = (await receiver.waitFor(before + 2)).slice(before + 1);
    expect(() => verifies(rotated.secret, next)).not.toThrow();
    expect(() => verifies(hook.secret, next)).not.toThrow();
  });

  it('seals plain secrets of older rows, re-seals after a key rotation, and a missing key fails the attempt visibly', async () => {
    const { p, hook } = await setUp();
    // A row as the version before encryption left it.
    await db.query(`UPDATE webhooks SET secret = $2 WHERE id = $1`, [hook.id, hook.secret]);
    const old = new WebhookSecretCodec(parseKeyRing(K1, 'unused-admin-token'));
    expect((await resealWebhookSecrets(ledger(), old)).resealed).toBeGreaterThanOrEqual(1);
    expect((await stored(hook.id)).secret).toMatch(/^v1:k1:/);
    expect(await resealWebhookSecrets(ledger(), old)).toEqual({ resealed: 0, unreadable: 0 });

    // Rotation: k2 first, k1 kept to read. Every row moves to k2.
    const rotated = new WebhookSecretCodec(parseKeyRing(`${K2},${K1}`, 'unused-admin-token'));
    await resealWebhookSecrets(ledger(), rotated);
    expect((await stored(hook.id)).secret).toMatch(/^v1:k2:/);

    // This worker only knows k1: the attempt fails, saying why, and is retried.
    const before = receiver.received.length;
    await fireAlert(p);
    const deliveries = async () =>
      (await http().get(`/projects/${p.projectId}/webhook-deliveries`).set(p.headers).expect(200))
        .body.items as Array<{ id: string; attempts: number; last_error: string | null }>;
    let [d] = await deliveries();
    for (let i = 0; (!d || d.attempts === 0) && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      [d] = await deliveries();
    }
    expect(d.last_error).toMatch(/secret cannot be decrypted: .*"k2"/);
    expect(receiver.received.length).toBe(before);

    // A worker with the new key delivers it, signed with the secret the tenant was given.
    await worker.close();
    worker = await startWorker({ ...env, WEBHOOK_SECRET_KEYS: `${K2},${K1}` });
    await http().post(`/webhook-deliveries/${d.id}/retry`).set(p.headers).expect(202);
    const [got] = (await receiver.waitFor(before + 1)).slice(before);
    expect(() => verifies(hook.secret, got)).not.toThrow();
  });
});
