import { WorkerRoles } from '@app/config';
import { MetricsService } from '@app/observability';
import { QUEUES } from '@app/queue';
import { isolatedRun, IsolatedRun, TestProject } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { rule, send, sleep, until } from '../support/fixtures';
import { closeInOrder } from '../support/shutdown';
import { TestReceiver } from '../support/subscriber';
import { drained, openQueue, RunningWorker, startWorker } from '../support/worker';

type Json = Record<string, any>;

/**
 * WORKER_QUEUES: a worker process consumes only its roles' queues and runs only their
 * periodic duties. The pipeline is brought up one role at a time, on a database and queues
 * of this file's own: each step's work waits, pending and not lost, until a process of the
 * next role starts.
 */
describe('worker roles (integration)', () => {
  jest.setTimeout(60000);

  let own: IsolatedRun;
  let api: RunningApi;
  let receiver: TestReceiver;
  let db: DataSource;
  const workers: RunningWorker[] = [];
  const queues = Object.values(QUEUES);
  const handles = new Map<string, ReturnType<typeof openQueue>>();

  beforeAll(async () => {
    own = await isolatedRun('roles');
    api = await startApi(own.env);
    receiver = await new TestReceiver().start();
    db = api.app.get(DataSource);
    for (const q of queues) handles.set(q, openQueue(q, own.env));
  });
  afterAll(() =>
    closeInOrder([
      ['workers', () => Promise.all(workers.map((w) => w.close()))],
      ['queues', () => Promise.all([...handles.values()].map((q) => q.close()))],
      ['api', () => api?.close()],
      ['receiver', () => receiver?.close()],
      ['database', () => own?.drop()],
    ]),
  );

  async function worker(roles: string): Promise<RunningWorker> {
    const w = await startWorker({ ...own.env, WORKER_QUEUES: roles });
    workers.push(w);
    return w;
  }

  /**
   * How many BullMQ consumers each queue has, from Redis's client list, once `expected`
   * queues have theirs (a consumer names its connection when it first connects).
   */
  async function consumers(expected: number): Promise<Record<string, number>> {
    return until(
      `${expected} queues with consumers`,
      async () => {
        const counts: Record<string, number> = {};
        for (const q of queues) counts[q] = (await handles.get(q)!.getWorkers()).length;
        return counts;
      },
      { done: (c) => Object.values(c).filter((n) => n > 0).length >= expected, timeoutMs: 10000 },
    );
  }

  const events = async (alertId: string): Promise<Json[]> =>
    db.query(
      `SELECT type, dispatched_at FROM alert_events WHERE alert_id = $1 ORDER BY created_at`,
      [alertId],
    );

  it('runs the pipeline one role at a time, each step waiting for its role, and consumes nothing else', async () => {
    const http = () => request(api.server);
    const p: TestProject = await api.tenants.newProject();
    await rule(api, p).expect(201);
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: receiver.url, event_types: ['alert.created', 'alert.acknowledged'] })
      .expect(201);

    // ingest: stores the batch, opens the alert and fans its event out to a pending
    // delivery, all in one transaction.
    await worker('ingest');
    expect(await consumers(1)).toEqual({
      [QUEUES.TELEMETRY_INGEST]: 1,
      [QUEUES.RULE_EVALUATION]: 0,
      [QUEUES.ALERT_EVENTS]: 0,
      [QUEUES.WEBHOOK_DELIVERY]: 0,
    });
    await send(api, p, 'r', [9], { metric: 't' });
    await drained(handles.get(QUEUES.TELEMETRY_INGEST)!);
    const [alert] = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
      .body.items as Json[];
    expect(alert).toMatchObject({ status: 'open' });

    // An event written by the api is handed on only by the outbox sweep, which runs where
    // alert events are consumed: not in this ingest process.
    await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
    await sleep(2500);
    const alertEvents = handles.get(QUEUES.ALERT_EVENTS)!;
    expect(await alertEvents.getJobCounts('waiting')).toEqual({ waiting: 0 });
    const [created, ack] = await events(alert.id);
    expect(created).toMatchObject({ type: 'alert.created', dispatched_at: expect.any(Date) });
    expect(ack).toMatchObject({ type: 'alert.acknowledged', dispatched_at: null });
    const pendingDeliveries = async () =>
      (
        await db.query(
          `SELECT count(*)::int AS n FROM webhook_deliveries WHERE project_id = $1 AND status = 'pending'`,
          [p.projectId],
        )
      )[0].n as number;
    expect(await pendingDeliveries()).toBe(1);

    // alert-events: fans the ack out (the sweep relays it), creating its pending delivery.
    await worker('alert-events');
    await until('both events dispatched', () => events(alert.id), {
      done: (e) => e.every((x) => x.dispatched_at !== null),
      timeoutMs: 10000,
      everyMs: 100,
    });
    await sleep(500);
    expect(receiver.received).toHaveLength(0);
    expect(await pendingDeliveries()).toBe(2);

    // deliver: sends them.
    await worker('deliver');
    const received = await receiver.waitFor(2);
    expect(received.map((r) => (JSON.parse(r.body) as Json).type).sort()).toEqual([
      'alert.acknowledged',
      'alert.created',
    ]);
    expect(await consumers(3)).toEqual({
      [QUEUES.TELEMETRY_INGEST]: 1,
      [QUEUES.RULE_EVALUATION]: 0,
      [QUEUES.ALERT_EVENTS]: 1,
      [QUEUES.WEBHOOK_DELIVERY]: 1,
    });
  });

  it('leaves a batch it could not evaluate to an evaluate process', async () => {
    const p: TestProject = await api.tenants.newProject();
    await rule(api, p).expect(201);
    const evaluation = handles.get(QUEUES.RULE_EVALUATION)!;
    // Readings stored but not evaluated make the next batch go to the queue.
    await send(api, p, 'e', [1], { metric: 't' });
    await drained(handles.get(QUEUES.TELEMETRY_INGEST)!);
    const [device] = await db.query(
      `SELECT id FROM devices WHERE project_id = $1 AND external_id = 'e'`,
      [p.projectId],
    );
    await db.query(
      `INSERT INTO telemetry (device_id, ts, data) VALUES ($1, now() - interval '1 hour', '{"t": 9}')`,
      [device.id],
    );
    await send(api, p, 'e', [1], { metric: 't', start: 10 ** 6 });
    await drained(handles.get(QUEUES.TELEMETRY_INGEST)!);
    expect(await evaluation.getJobCounts('waiting')).toEqual({ waiting: 1 });

    await worker('evaluate');
    await drained(evaluation);
    const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM alerts WHERE device_id = $1`, [
      device.id,
    ]);
    expect(n).toBe(1);
  });
  it('runs each periodic duty in the processes of its role, and nowhere else', async () => {
    // The table in docs/operations.md ("Worker roles").
    const expected: Record<string, string[]> = {
      ingest: ['backlog audit', 'partition maintenance'],
      evaluate: ['offline scan'],
      'alert-events': ['alerts gauge', 'outbox sweep', 'reminder sweep', 'silence release'],
      deliver: ['circuit gauge', 'delivery sweep', 'secret sealing'],
    };
    expected.all = Object.values(expected).flat().sort();
    expected['ingest,deliver'] = [...expected.ingest, ...expected.deliver].sort();
    for (const [roles, duties] of Object.entries(expected)) {
      const w = await startWorker({ ...own.env, WORKER_QUEUES: roles });
      try {
        expect({ roles, duties: w.app.get(WorkerRoles).duties }).toEqual({ roles, duties });
        const metrics = (await w.app.get(MetricsService).render()).body;
        const exported = [...metrics.matchAll(/^worker_duties\{duty="([^"]+)"\} 1$/gm)].map(
          (m) => m[1],
        );
        expect({ roles, exported: exported.sort() }).toEqual({ roles, exported: duties });
      } finally {
        await w.close();
      }
    }
  });
});
