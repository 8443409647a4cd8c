import { QUEUES } from '@app/queue';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { TestProject } from '@app/testing';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send, until } from '../support/fixtures';
import { TestReceiver } from '../support/subscriber';
import { drained, INGEST, openQueue, RunningWorker, startWorker } from '../support/worker';

const at = clock(Date.UTC(2025, 0, 1, 12));

/**
 * The outbox hands an alert event written outside an evaluation (here the api's ack) to
 * the alert-events queue; the fan-out creates its deliveries. An event counts as
 * dispatched only once they exist, so a fan-out job that fails or is lost is made up for:
 * the relay hands the event on again. An evaluation's events skip all that: they are
 * fanned out in the evaluation's transaction.
 */
describe('outbox to deliveries (integration)', () => {
  jest.setTimeout(60000);
  let api: RunningApi;
  let worker: RunningWorker;
  let receiver: TestReceiver;
  let db: DataSource;
  let alertEvents: ReturnType<typeof openQueue>;
  let ingest: ReturnType<typeof openQueue>;
  let evaluation: ReturnType<typeof openQueue>;

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorker();
    receiver = await new TestReceiver().start();
    db = api.app.get(DataSource);
    alertEvents = openQueue(QUEUES.ALERT_EVENTS);
    ingest = openQueue(INGEST);
    evaluation = openQueue(QUEUES.RULE_EVALUATION);
  });
  // Each test pauses the fan-out's queue first.
  afterEach(() => alertEvents.resume());
  afterAll(async () => {
    await Promise.all([alertEvents.close(), ingest.close(), evaluation.close()]);
    await worker.close();
    await api.close();
    await receiver.close();
  });

  const http = () => request(api.server);

  /** A project with a webhook for every default type and the 1-of-1 hot rule. */
  async function project(): Promise<TestProject> {
    const p = await api.tenants.newProject();
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: receiver.url })
      .expect(201);
    await rule(api, p).expect(201);
    return p;
  }

  /** Sends `values` of `t` for device d and waits until they are stored and evaluated. */
  async function ingested(p: TestProject, values: number[], start = 0): Promise<void> {
    await send(api, p, 'd', values, { metric: 't', at, start });
    await drained(ingest);
    await drained(evaluation);
  }

  it('an alert event whose fan-out job was lost is still delivered', async () => {
    const p = await project();
    // Fan-out stops consuming; the job the relay hands over is then lost (removed).
    await alertEvents.pause();
    await ingested(p, [9]);
    // The evaluation fanned its alert.created out itself, with the queue paused.
    const [created] = await db.query(
      `SELECT id, alert_id, dispatched_at FROM alert_events WHERE project_id = $1`,
      [p.projectId],
    );
    expect(created.dispatched_at).not.toBeNull();
    const [first] = await receiver.waitFor(1, 15000);
    expect(first.headers['webhook-id']).toBe(created.id);

    await http().post(`/alerts/${created.alert_id}/ack`).set(p.headers).expect(200);
    const [event] = await db.query(
      `SELECT id FROM alert_events WHERE project_id = $1 AND type = 'alert.acknowledged'`,
      [p.projectId],
    );
    expect(event).toBeDefined();
    let lost = 0;
    const deadline = Date.now() + 10000;
    while (lost === 0 && Date.now() < deadline) {
      for (const job of await alertEvents.getJobs(['waiting', 'prioritized'])) {
        if (job.data.eventId === event.id) {
          await job.remove();
          lost++;
        }
      }
      if (lost === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(lost).toBe(1);
    await alertEvents.resume();

    // Time passes: the relay's "hand it on again" period is over.
    await db.query(`UPDATE alert_events SET relayed_at = now() - interval '1 hour' WHERE id = $1`, [
      event.id,
    ]);
    const delivered = await receiver.waitFor(2, 15000);
    expect(delivered[1].headers['webhook-id']).toBe(event.id);
    const [row] = await db.query(`SELECT dispatched_at FROM alert_events WHERE id = $1`, [
      event.id,
    ]);
    expect(row.dispatched_at).not.toBeNull();
  });

  it('leaves an earlier event of the alert that the relay handed on to its job, when an evaluation fans out its own', async () => {
    const p = await project();
    await alertEvents.pause();
    type Row = { id: string; relayed_at: Date | null; dispatched_at: Date | null };
    const eventsOf = async (): Promise<Record<string, Row>> =>
      Object.fromEntries(
        (
          await db.query(
            `SELECT id, type, relayed_at, dispatched_at FROM alert_events WHERE project_id = $1`,
            [p.projectId],
          )
        ).map((e: { type: string }) => [e.type, e]),
      );
    await ingested(p, [9]);
    const [alert] = await db.query(`SELECT id FROM alerts WHERE project_id = $1`, [p.projectId]);
    await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
    // The sweep hands the ack on to the paused queue: its job waits there.
    await until('the ack relayed', eventsOf, {
      done: (e) => e['alert.acknowledged']?.relayed_at != null,
      timeoutMs: 10000,
      everyMs: 100,
    });

    // An evaluation resolves the alert and fans out its alert.resolved, not the ack.
    await ingested(p, [1], 1);
    const events = await eventsOf();
    expect(events['alert.resolved'].dispatched_at).not.toBeNull();
    expect(events['alert.acknowledged'].dispatched_at).toBeNull();

    await alertEvents.resume();
    const ids = Object.values(events).map((e) => e.id);
    const mine = await until(
      'three deliveries',
      async () =>
        receiver.received
          .map((r) => r.headers['webhook-id'] as string)
          .filter((id) => ids.includes(id)),
      { done: (got) => got.length >= 3, timeoutMs: 15000, everyMs: 100 },
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(
      receiver.received.filter((r) => ids.includes(r.headers['webhook-id'] as string)),
    ).toHaveLength(3);
    expect(new Set(mine)).toEqual(new Set(ids));
  });
});
