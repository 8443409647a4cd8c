import { adminHeaders, isolatedRun, IsolatedRun } from '@app/testing';
import { ChildProcess } from 'node:child_process';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from '@app/database';
import { HOT_RULE, sleep, until } from '../support/fixtures';
import { appEnv, exited, freePort, spawnApp, waitFor } from '../support/processes';
import { TestReceiver } from '../support/subscriber';

type Json = Record<string, any>;
type App = ChildProcess & { output: () => string };

const ROLES = ['ingest', 'evaluate', 'alert-events', 'deliver'] as const;
const GRACE_MS = 10000;

/**
 * The production topology on one machine: two api processes, one worker process per role
 * and one with every role (`all`), each the real `main.ts` as a child process, on a
 * database and queues of this file's own. The pipeline runs end to end across them; each
 * role's process does only its role's work (its /metrics counts nothing of the others',
 * the `all` process shares every role's); stopping every process that delivers holds
 * deliveries, pending, until one is back; SIGTERM drains each role well inside its grace
 * period.
 */
describe('production topology (integration)', () => {
  jest.setTimeout(180000);

  let own: IsolatedRun;
  let db: DataSource;
  let receiver: TestReceiver;
  const apis: Array<{ app: App; url: string }> = [];
  const workers = new Map<string, { app: App; metrics: string }>();
  const env = () => appEnv({ ...own.env, SHUTDOWN_GRACE_MS: String(GRACE_MS) });

  async function startWorker(role: string): Promise<void> {
    const port = await freePort();
    const app = spawnApp('worker', { ...env(), WORKER_QUEUES: role, WORKER_PORT: String(port) });
    workers.set(role, { app, metrics: `http://127.0.0.1:${port}/metrics` });
    await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 90000);
  }

  /**
   * SIGTERM; resolves with how long the exit took and whether it was clean: exit 0 or the
   * signal re-raised after Nest's shutdown hooks ran, nothing logged at error or fatal.
   */
  async function stop(app: App): Promise<{ ms: number; clean: boolean }> {
    const t = Date.now();
    app.kill('SIGTERM');
    const { code, signal } = await exited(app);
    const errors = /"level":(50|60)/.test(app.output());
    return { ms: Date.now() - t, clean: (code === 0 || signal === 'SIGTERM') && !errors };
  }

  beforeAll(async () => {
    own = await isolatedRun('topology');
    db = new DataSource(
      buildDataSourceOptions({ url: String(own.env.DATABASE_URL), poolSize: 2 }, 'topology'),
    );
    await db.initialize();
    receiver = await new TestReceiver().start();
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const app = spawnApp('api', { ...env(), PORT: String(port) });
      apis.push({ app, url: `http://127.0.0.1:${port}` });
    }
    await Promise.all(apis.map((a) => waitFor(`${a.url}/health/ready`, 200, 90000)));
    for (const role of [...ROLES, 'all']) await startWorker(role);
  });
  afterAll(async () => {
    for (const { app } of [...apis, ...workers.values()]) {
      if (app.exitCode === null && app.signalCode === null) {
        app.kill('SIGKILL');
        await exited(app);
      }
    }
    await receiver?.close();
    await db?.destroy();
    await own?.drop();
  });

  const admin = adminHeaders;
  async function call(
    i: number,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = admin,
  ) {
    const res = await fetch(`${apis[i % 2].url}${path}`, {
      method,
      headers: { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? (JSON.parse(text) as Json) : {};
  }

  /** A series' value on a worker's /metrics (0 when absent). */
  async function metric(role: string, series: string): Promise<number> {
    const text = await (await fetch(workers.get(role)!.metrics)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(' ')[1]) : 0;
  }

  const pendingDeliveries = async (): Promise<number> =>
    (
      await db.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`)
    )[0].n;

  it('runs the pipeline across the processes, each role doing only its own work', async () => {
    const org = await call(0, 'POST', '/orgs', { name: 'topology' });
    const project = await call(1, 'POST', `/orgs/${org.id}/projects`, { name: 'topology' });
    const { key } = await call(0, 'POST', `/projects/${project.id}/api-keys`, { name: 'k' });
    const auth = { 'x-api-key': key };
    await call(1, 'POST', `/projects/${project.id}/rules`, HOT_RULE, auth);
    await call(
      0,
      'POST',
      `/projects/${project.id}/webhooks`,
      {
        url: receiver.url,
        event_types: ['alert.created'],
      },
      auth,
    );

    // Ten devices, a hot reading each, alternating between the two apis.
    for (let d = 0; d < 10; d++)
      await call(
        d,
        'POST',
        '/telemetry',
        {
          device_external_id: `dev-${d}`,
          events: [{ ts: new Date(Date.UTC(2025, 0, 1, 0, 0, d)).toISOString(), data: { t: 9 } }],
        },
        auth,
      );
    const received = await receiver.waitFor(10, 60000);
    expect(new Set(received.map((r) => (JSON.parse(r.body) as Json).data.alert.id)).size).toBe(10);

    // Who did what: evaluation where the batch was stored (in its transaction), so in an
    // ingest or the all process; deliveries only in the deliver or the all process;
    // nothing of either in the other roles' processes.
    const both = async (role: string, series: string) =>
      (await metric(role, series)) + (await metric('all', series));
    expect(await both('ingest', 'telemetry_ingest_events_stored_total')).toBe(10);
    expect(await both('ingest', 'rules_evaluations_total{path="batch"}')).toBe(10);
    expect(await both('deliver', 'webhook_attempts_total{outcome="succeeded"}')).toBe(10);
    for (const role of ['evaluate', 'alert-events', 'deliver'])
      expect(await metric(role, 'telemetry_ingest_events_stored_total')).toBe(0);
    for (const role of ['ingest', 'evaluate', 'alert-events'])
      expect(await metric(role, 'webhook_attempts_total{outcome="succeeded"}')).toBe(0);
    expect(await metric('ingest', 'queue_jobs{queue="telemetry-ingest",state="waiting"}')).toBe(0);

    // No process that delivers: a new alert's delivery waits, pending, until one is back.
    for (const role of ['deliver', 'all']) {
      const { ms, clean } = await stop(workers.get(role)!.app);
      expect({ role, clean }).toEqual({ role, clean: true });
      expect(ms).toBeLessThan(GRACE_MS);
    }
    await call(
      0,
      'POST',
      '/telemetry',
      {
        device_external_id: 'late',
        events: [{ ts: new Date(Date.UTC(2025, 0, 2)).toISOString(), data: { t: 9 } }],
      },
      auth,
    );
    await until('a pending delivery', pendingDeliveries, {
      done: (n) => n === 1,
      timeoutMs: 20000,
    });
    await sleep(1000);
    expect(receiver.received).toHaveLength(10);
    await startWorker('deliver');
    await receiver.waitFor(11, 60000);
    await until('the delivery recorded', pendingDeliveries, { done: (n) => n === 0 });
  });

  it('drains each role on SIGTERM inside its grace period', async () => {
    for (const role of ROLES) {
      const { ms, clean } = await stop(workers.get(role)!.app);
      expect({ role, clean }).toEqual({ role, clean: true });
      expect(ms).toBeLessThan(GRACE_MS);
      expect(workers.get(role)!.app.output()).toContain('SIGTERM received: draining jobs');
    }
    for (const { app } of apis) expect((await stop(app)).clean).toBe(true);
  });
});
