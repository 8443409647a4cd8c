import { testRunEnv, TestProject as Project } from '@app/testing';
import request from 'supertest';
import { RunningApi } from '../support/api';
import { clock, rule, send, until } from '../support/fixtures';
import { TestReceivers } from '../support/subscriber';
import { Stack, startStack } from '../support/stack';
import { Pipeline } from '../support/worker';

const at = clock(Date.UTC(2025, 5, 1));

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
  let stack: Stack;
  let api: RunningApi;
  let pipeline: Pipeline;
  const receivers = new TestReceivers();

  beforeAll(async () => {
    stack = await startStack(env);
    ({ api, pipeline } = stack);
  });
  afterAll(async () => {
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const receiver = () => receivers.start();
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
    await rule(api, p).expect(201);
    for (let d = 0; d < devices; d++)
      await send(api, p, `dev-${d}`, [9], { start: d, metric: 't', at });
    await pipeline.idle();
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
    await until('two slow deliveries in flight', () => slow.received.length >= 2, {
      timeoutMs: 6000,
      everyMs: 25,
    });
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
    const mine = await until(
      "the attacker's circuit open",
      () => status(attacker, attackerHook.id),
      {
        done: (c) => c.state === 'open',
        timeoutMs: 6000,
        everyMs: 50,
      },
    );
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
