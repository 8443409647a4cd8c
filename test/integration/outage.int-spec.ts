import { QUEUES } from '@app/queue';
import { emptyState, evaluate } from '@app/rules';
import { testRunEnv } from '@app/testing';
import { Queue } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { rule } from '../support/fixtures';
import { TestReceiver } from '../support/subscriber';
import { closeInOrder } from '../support/shutdown';
import { TcpProxy } from '../support/tcp-proxy';
import { drained, openQueue, RunningWorker, startWorker } from '../support/worker';

const T0 = Date.UTC(2025, 3, 1);
const DEVICES = ['o-1', 'o-2', 'o-3'];
const PER_BATCH = 20;
const RULE = {
  metric: 't',
  operator: '>' as const,
  threshold: 5,
  windowN: 1,
  requiredK: 1,
  cooldownSeconds: 0,
};
/** Alternates 5 calm and 5 hot readings, so alerts keep opening and resolving. */
const value = (k: number) => (k % 10 < 5 ? 1 : 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ALL_QUEUES = Object.values(QUEUES);

/**
 * Bad weather end to end: the api and the worker reach PostgreSQL and Redis through TCP
 * proxies that the test cuts (every connection reset, new ones refused, like a failover;
 * or every byte dropped, like a partition) while devices ingest at a steady rate. The job retry budget is cut to a few seconds and
 * the outage lasts far longer: jobs must wait it out, not spend their attempts. After the
 * link is back, every event the api accepted (202) is stored exactly once, every alert is
 * opened once, every alert event reaches the subscriber, and no job is in a failed set.
 */
describe('outages of PostgreSQL and Redis (integration)', () => {
  jest.setTimeout(180000);

  let pg: TcpProxy;
  let redis: TcpProxy;
  let api: RunningApi;
  let worker: RunningWorker;
  let receiver: TestReceiver;
  let db: DataSource;
  let queues: Queue[];

  beforeAll(async () => {
    const run = testRunEnv();
    const db0 = new URL(run.databaseUrl);
    const redis0 = new URL(run.redisUrl);
    pg = await TcpProxy.start({ host: db0.hostname, port: Number(db0.port || 5432) });
    redis = await TcpProxy.start({ host: redis0.hostname, port: Number(redis0.port || 6379) });
    const env = {
      DATABASE_URL: pg.url(run.databaseUrl),
      REDIS_URL: redis.url(run.redisUrl),
      // The old retry budget, shrunk: 3 attempts from 0.5 s give up after a few seconds.
      QUEUE_ATTEMPTS: '3',
      QUEUE_BACKOFF_MS: '500',
      // Locks lapse during the Redis cut: other workers' stalled checks run jobs again.
      QUEUE_LOCK_DURATION_MS: '5000',
      // A connection PostgreSQL leaves silent is dropped after 15 s (5 s past these, at
      // least 15 s): the black-holed phase lasts longer.
      DATABASE_STATEMENT_TIMEOUT_MS: '3000',
      API_STATEMENT_TIMEOUT_MS: '3000',
      WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '1000',
    };
    api = await startApi(env);
    worker = await startWorker(env);
    receiver = await new TestReceiver().start();
    db = api.app.get(DataSource);
    // Our own view of the queues goes around the proxy: it must see through the outage.
    queues = ALL_QUEUES.map((name) => openQueue(name));
  });
  afterAll(async () => {
    pg?.setMode('pass');
    redis?.setMode('pass');
    await closeInOrder([
      ['worker', worker && (() => worker.close())],
      ['api', api && (() => api.close())],
      ['receiver', receiver && (() => receiver.close())],
      ['queues', () => Promise.all((queues ?? []).map((q) => q.close()))],
      ['proxies', () => Promise.all([pg?.close(), redis?.close()])],
    ]);
  });

  async function runThroughOutage(
    proxy: TcpProxy,
    outageMs: number,
    mode: 'reset' | 'blackhole' = 'reset',
  ): Promise<void> {
    const p = await api.tenants.newProject();
    const http = () => request(api.server);
    await rule(api, p).expect(201);
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: receiver.url })
      .expect(201);

    // Steady ingest, one batch every 100 ms round the devices, before, during and after.
    const accepted = new Map<string, Array<{ ts: number; t: number }>>(DEVICES.map((d) => [d, []]));
    // Refused batches (503, or no answer): a refused `add` that reached Redis before the
    // connection dropped, its answer lost, is stored all the same. A client retries it and
    // the (device, ts) key stores it once; here it may be stored, never twice.
    const refused = new Map<string, Set<number>>(DEVICES.map((d) => [d, new Set()]));
    const statuses = new Map<number, number>();
    let stop = false;
    const ingest = (async () => {
      for (let b = 0; !stop; b++) {
        const device = DEVICES[b % DEVICES.length];
        const round = Math.floor(b / DEVICES.length);
        const events = Array.from({ length: PER_BATCH }, (_, i) => {
          const k = round * PER_BATCH + i;
          return { ts: T0 + k * 1000, t: value(k) };
        });
        const res = await http()
          .post('/telemetry')
          .set(p.headers)
          .send({
            device_external_id: device,
            events: events.map((e) => ({ ts: new Date(e.ts).toISOString(), data: { t: e.t } })),
          })
          .timeout(10000)
          .catch((err: { status?: number }) => ({ status: err.status ?? 0 }));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 202) accepted.get(device)!.push(...events);
        else {
          expect([503, 0]).toContain(res.status);
          for (const e of events) refused.get(device)!.add(e.ts);
        }
        await sleep(100);
      }
    })();

    await sleep(3000);
    proxy.setMode(mode);
    await sleep(outageMs);
    proxy.setMode('pass');
    await sleep(3000);
    stop = true;
    await ingest;
    expect(statuses.get(202)).toBeGreaterThan(20);

    // Everything settles by itself: queues drain, deliveries finish.
    const deadline = Date.now() + 90000;
    for (const q of queues) await drained(q, Math.max(1000, deadline - Date.now()));
    for (const q of queues) await drained(q, Math.max(1000, deadline - Date.now()));
    const pendingDeliveries = async () =>
      Number(
        (
          await db.query(
            `SELECT count(*) AS n FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending'`,
            [p.projectId],
          )
        )[0].n,
      );
    while ((await pendingDeliveries()) > 0 && Date.now() < deadline) await sleep(200);

    for (const device of DEVICES) {
      const [{ id: deviceId }] = await db.query(
        `SELECT id FROM devices WHERE project_id = $1 AND external_id = $2`,
        [p.projectId, device],
      );
      const stored: Array<{ ts: number; t: number }> = (
        await db.query(
          `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ts, (data ->> 't')::float8 AS t
             FROM telemetry WHERE device_id = $1 ORDER BY ts`,
          [deviceId],
        )
      ).map((r: { ts: number; t: number }) => ({ ts: Number(r.ts), t: Number(r.t) }));
      const storedTs = new Set(stored.map((r) => r.ts));
      // Every accepted reading is stored (once: the key is (device, ts)); anything else
      // stored is a refused one that reached Redis after all.
      expect({ device, lost: accepted.get(device)!.filter((r) => !storedTs.has(r.ts)) }).toEqual({
        device,
        lost: [],
      });
      const accept = new Set(accepted.get(device)!.map((r) => r.ts));
      expect({
        device,
        unknown: stored.filter((r) => !accept.has(r.ts) && !refused.get(device)!.has(r.ts)),
      }).toEqual({ device, unknown: [] });
      // A refused batch stored after its successors may be stored as late (never
      // evaluated): the exact alert check is for devices without one, nearly always all.
      if (stored.length !== accept.size) continue;
      // Alerts: exactly what the evaluator makes of the accepted readings, in ts order.
      const expected = evaluate(
        RULE,
        emptyState(),
        stored.map((r) => ({ ts: r.ts, data: { t: r.t } })),
      ).transitions.filter((t) => t.kind === 'open');
      const opened = await db.query(
        `SELECT triggered_at FROM alerts WHERE device_id = $1 ORDER BY triggered_at`,
        [deviceId],
      );
      expect({
        device,
        opened: opened.map((a: { triggered_at: Date }) => a.triggered_at.getTime()),
      }).toEqual({ device, opened: expected.map((t) => t.at) });
    }

    // Every alert event was delivered, and the subscriber has each one.
    const events: Array<{ id: string; status: string | null }> = await db.query(
      `SELECT e.id, d.status FROM alert_events e
         LEFT JOIN webhook_deliveries d ON d.event_id = e.id
        WHERE e.project_id = $1`,
      [p.projectId],
    );
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((e) => e.status !== 'succeeded')).toEqual([]);
    const received = new Set(receiver.received.map((r) => r.headers['webhook-id']));
    expect(events.filter((e) => !received.has(e.id))).toEqual([]);

    // Nothing gave up.
    for (const q of queues) {
      const failed = await q.getJobs(['failed']);
      const mine = failed.filter((j) => j.data?.projectId === p.projectId);
      expect({ queue: q.name, failed: mine.map((j) => j.failedReason) }).toEqual({
        queue: q.name,
        failed: [],
      });
    }
  }

  it('loses nothing when PostgreSQL is cut for longer than the retry budget', async () => {
    await runThroughOutage(pg, 20000);
  });

  it('loses nothing when Redis is cut mid-run, for longer than job locks last', async () => {
    await runThroughOutage(redis, 10000);
  });

  it('loses nothing when PostgreSQL is partitioned away (connections go silent, nothing refused)', async () => {
    await runThroughOutage(pg, 25000, 'blackhole');
  });
});
