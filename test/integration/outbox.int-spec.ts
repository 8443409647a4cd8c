import { QUEUES } from '@app/queue';
import request from 'supertest';
import { DataSource } from 'typeorm';
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

  beforeAll(async () => {
    api = await startApi();
    worker = await startWorker();
    receiver = await new TestReceiver().start();
    db = api.app.get(DataSource);
  });
  afterAll(async () => {
    await worker.close();
    await api.close();
    await receiver.close();
  });

  it('an alert event whose fan-out job was lost is still delivered', async () => {
    const p = await api.tenants.newProject();
    const http = () => request(api.server);
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: receiver.url })
      .expect(201);
    await rule(api, p).expect(201);

    // Fan-out stops consuming; the job the relay hands over is then lost (removed).
    const alertEvents = openQueue(QUEUES.ALERT_EVENTS);
    await alertEvents.pause();
    const ingest = openQueue(INGEST);
    const evaluation = openQueue(QUEUES.RULE_EVALUATION);
    try {
      await send(api, p, 'd', [9], { metric: 't', at });
      await drained(ingest);
      await drained(evaluation);
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
      await db.query(
        `UPDATE alert_events SET relayed_at = now() - interval '1 hour' WHERE id = $1`,
        [event.id],
      );
      const delivered = await receiver.waitFor(2, 15000);
      expect(delivered[1].headers['webhook-id']).toBe(event.id);
      const [row] = await db.query(`SELECT dispatched_at FROM alert_events WHERE id = $1`, [
        event.id,
      ]);
      expect(row.dispatched_at).not.toBeNull();
    } finally {
      await alertEvents.resume();
      await Promise.all([alertEvents.close(), ingest.close(), evaluation.close()]);
    }
  });

  it('leaves an earlier event of the alert that the relay handed on to its job, when an evaluation fans out its own', async () => {
    const p = await api.tenants.newProject();
    const http = () => request(api.server);
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: receiver.url })
      .expect(201);
    await rule(api, p).expect(201);
    const alertEvents = openQueue(QUEUES.ALERT_EVENTS);
    await alertEvents.pause();
    const ingest = openQueue(INGEST);
    const evaluation = openQueue(QUEUES.RULE_EVALUATION);
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
    try {
      await send(api, p, 'd', [9], { metric: 't', at });
      await drained(ingest);
      await drained(evaluation);
      const [alert] = await db.query(`SELECT id FROM alerts WHERE project_id = $1`, [p.projectId]);
      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      // The sweep hands the ack on to the paused queue: its job waits there.
      await until('the ack relayed', eventsOf, {
        done: (e) => e['alert.acknowledged']?.relayed_at != null,
        timeoutMs: 10000,
        everyMs: 100,
      });

      // An evaluation resolves the alert and fans out its alert.resolved, not the ack.
      await send(api, p, 'd', [1], { metric: 't', at, start: 1 });
      await drained(ingest);
      await drained(evaluation);
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
    } finally {
      await alertEvents.resume();
      await Promise.all([alertEvents.close(), ingest.close(), evaluation.close()]);
    }
  });
});
