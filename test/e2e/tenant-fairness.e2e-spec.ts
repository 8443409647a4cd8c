import { QUEUES } from '@app/queue';
import { testRunEnv } from '@app/testing';
import { Queue } from 'bullmq';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { TestReceiver } from '../support/subscriber';
import { drained, INGEST, openQueue, RunningWorker, startWorker } from '../support/worker';

const T0 = Date.UTC(2025, 5, 1);
const at = (i: number) => new Date(T0 + i * 1000).toISOString();
type Project = Awaited<ReturnType<RunningApi['tenants']['newProject']>>;

/**
 * One tenant must not hurt the others: its slow webhook endpoints hold only its own
 * delivery slots, and its endpoint failures open only its own circuit.
 */
describe('fairness between tenants (e2e)', () => {
  jest.setTimeout(60000);
  const env = {
    REDIS_PREFIX: `${testRunEnv().redisPrefix}:fair`,
    WEBHOOK_CONCURRENCY: '4',
    WEBHOOK_PROJECT_CONCURRENCY: '2',
    WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '2',
    WEBHOOK_TIMEOUT_MS: '10000',
  };
  let api: RunningApi;
  let worker: RunningWorker;
  let queues: Queue[];
  const receivers: TestReceiver[] = [];

  beforeAll(async () => {
    api = await startApi(env);
    worker = await startWorker(env);
    queues = [openQueue(INGEST, env), openQueue(QUEUES.RULE_EVALUATION, env)];
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
    await Promise.all(queues.map((q) => q.close()));
    await Promise.all(receivers.map((r) => r.close()));
  });

  const http = () => request(api.server);
  const receiver = async () => {
    const r = await new TestReceiver().start();
    receivers.push(r);
    return r;
  };
  const subscribe = async (p: Project, url: string) =>
    (
      await http()
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url, event_types: ['alert.created'] })
        .expect(201)
    ).body as { id: string };
  /** A 1-of-1 rule per device, so every hot reading of a new device opens one alert. */
  const alertsFor = async (p: Project, devices: number) => {
    await http()
      .post(`/projects/${p.projectId}/rules`)
      .set(p.headers)
      .send({ name: 'hot', metric: 't', operator: '>', threshold: 5, window_n: 1, required_k: 1 })
      .expect(201);
    for (let d = 0; d < devices; d++)
      await http()
        .post('/telemetry')
        .set(p.headers)
        .send({ device_external_id: `dev-${d}`, events: [{ ts: at(d), data: { t: 9 } }] })
        .expect(202);
    for (const q of queues) await drained(q);
  };

  it("a tenant with slow endpoints holds only its share of delivery slots; another's deliveries go on", async () => {
    const slow = await receiver();
    slow.respond = () => ({ status: 204, delayMs: 5000 });
    const fast = await receiver();
    const noisy = await api.tenants.newProject();
    const quiet = await api.tenants.newProject();
    await subscribe(noisy, slow.url);
    await subscribe(quiet, fast.url);

    await alertsFor(noisy, 6);
    // The noisy tenant's deliveries are in flight (its two slots taken) before the quiet one's.
    for (let i = 0; slow.received.length < 2 && i < 200; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(slow.received.length).toBe(2);
    const started = Date.now();
    await alertsFor(quiet, 1);
    const [got] = await fast.waitFor(1, 10000);
    // The quiet tenant did not wait for a slow delivery to finish...
    expect(got.startedAt - started).toBeLessThan(2500);
    const slowDone = await slow.waitFor(6, 40000);
    // ...and the noisy one never had more than its share in flight.
    const most = Math.max(
      ...slowDone.map(
        (r) =>
          slowDone.filter((o) => o.startedAt <= r.startedAt && o.endedAt! > r.startedAt).length,
      ),
    );
    expect(most).toBeLessThanOrEqual(2);
    expect(slowDone).toHaveLength(6);
    slow.respond = () => ({ status: 204 });
  });

  it("one tenant's failures on a URL neither open nor show in another tenant's circuit for it", async () => {
    const shared = await receiver();
    shared.respond = (r) => (r.headers['x-tenant'] ? { status: 204 } : { status: 503 });
    const attacker = await api.tenants.newProject();
    const victim = await api.tenants.newProject();
    const attackerHook = await subscribe(attacker, shared.url);
    const victimHook = await subscribe(victim, shared.url);
    // Only the attacker's project has alerts: its deliveries fail and open its circuit.
    await alertsFor(attacker, 3);
    await shared.waitFor(2);
    const status = async (p: Project, id: string) =>
      (await http().get(`/webhooks/${id}/circuit-status`).set(p.headers).expect(200)).body;
    let mine = await status(attacker, attackerHook.id);
    for (let i = 0; mine.state !== 'open' && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      mine = await status(attacker, attackerHook.id);
    }
    expect(mine.state).toBe('open');
    expect(await status(victim, victimHook.id)).toEqual({
      state: 'closed',
      consecutive_failures: 0,
      opened_at: null,
      next_attempt_at: null,
    });
    // The victim's own deliveries to that URL still go out at once.
    shared.respond = () => ({ status: 204 });
    const before = shared.received.length;
    await alertsFor(victim, 1);
    await shared.waitFor(before + 1, 5000);
  });
});
