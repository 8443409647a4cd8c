import { AlertReminders } from '@app/alerts';
import { QUEUES } from '@app/queue';
import { TestProject as Project } from '@app/testing';
import { Queue } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send, sleep } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { TestReceiver, TestReceivers } from '../support/subscriber';
import { openQueue, Pipeline, RunningWorker, startWorker } from '../support/worker';

const at = clock(Date.UTC(2025, 0, 1, 12));
type Json = Record<string, any>;
/** Reminders every second in this suite (the default floor is a minute). */
const ENV = { REMINDER_MIN_INTERVAL_SECONDS: '1' };

/** `reminder_interval_seconds`: the real api, two workers and a receiver. */
describe('reminders (e2e)', () => {
  jest.setTimeout(60000);

  let stack: Stack;
  let second: RunningWorker;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;
  let alertEvents: Queue;
  const receivers = new TestReceivers();

  beforeAll(async () => {
    stack = await startStack(ENV);
    ({ api, pipeline, db } = stack);
    // Two workers take reminder jobs: still one reminder per interval.
    second = await startWorker(ENV);
    alertEvents = openQueue(QUEUES.ALERT_EVENTS, ENV);
  });
  afterAll(async () => {
    // The suites after this one share the database and queues: no reminder chain goes on.
    await db.query(
      `UPDATE alerts SET status = 'resolved', resolved_at = now()
        WHERE status <> 'resolved' AND details -> 'rule' ->> 'reminder_interval_seconds' IS NOT NULL`,
    );
    for (const job of await alertEvents.getJobs(['delayed', 'waiting']))
      if (job?.name === 'alert-reminder') await job.remove();
    await alertEvents.close();
    await second.close();
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const hook = async (p: Project, eventTypes?: string[]): Promise<TestReceiver> => {
    const r = await receivers.start();
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: r.url, ...(eventTypes && { event_types: eventTypes }) })
      .expect(201);
    return r;
  };
  const bodies = (r: TestReceiver) => r.received.map((x) => JSON.parse(x.body) as Json);
  const reminderRows = async (p: Project): Promise<number[]> =>
    (
      await db.query(
        `SELECT payload -> 'alert' ->> 'reminders_sent' AS n FROM alert_events
          WHERE project_id = $1 AND type = 'alert.reminder' ORDER BY created_at`,
        [p.projectId],
      )
    ).map((r: { n: string }) => Number(r.n));
  /**
   * Reminder jobs of the alert still to run (delayed or waiting; BullMQ reads both lists in
   * one MULTI). Not `active`: the job being handled schedules its successor before it
   * completes, so for that moment the two exist, yet only one is outstanding.
   */
  const waitingFor = async (alertId: string) =>
    (await alertEvents.getJobs(['delayed', 'waiting'])).filter(
      (j) => j?.name === 'alert-reminder' && j.data.alertId === alertId,
    ).length;

  it('reminds every interval while open and unacknowledged, one job at a time, and stops at ack', async () => {
    const p = await api.tenants.newProject();
    const all = await hook(p, ['alert.created', 'alert.reminder', 'alert.acknowledged']);
    const classic = await hook(p);
    await rule(api, p, {
      metric: 'temperature',
      threshold: 80,
      reminder_interval_seconds: 1,
    }).expect(201);
    await send(api, p, 'd', [90], { at });
    await pipeline.idle(2);
    const outstanding: number[] = [];
    const [alert] = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
      .body.items;
    for (let i = 0; i < 12; i++) {
      outstanding.push(await waitingFor(alert.id));
      await sleep(250);
    }
    await all.waitFor(4, 15000);
    await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
    const atAck = (await reminderRows(p)).length;
    await sleep(2500);
    const rows = await reminderRows(p);
    // Reminder n is written once, in order; at most one more after the ack was in flight.
    expect(rows).toEqual(rows.map((_, i) => i + 1));
    expect(rows.length).toBeGreaterThanOrEqual(3);
    expect(rows.length).toBeLessThanOrEqual(atAck + 1);
    expect(Math.max(...outstanding)).toBeLessThanOrEqual(1);
    expect(await waitingFor(alert.id)).toBe(0);
    const types = bodies(all).map((b) => b.type);
    expect(types[0]).toBe('alert.created');
    expect(types.filter((t) => t === 'alert.reminder')).toHaveLength(rows.length);
    expect(
      bodies(all)
        .filter((b) => b.type === 'alert.reminder')
        .map((b) => b.data.alert.reminders_sent),
    ).toEqual(rows);
    // A webhook created without event_types never meets the opt-in type.
    expect(bodies(classic).map((b) => b.type)).toEqual(['alert.created', 'alert.acknowledged']);
    // Spaced by the interval, counted from the opening.
    const created = new Date(alert.created_at).getTime();
    const sent = all.received
      .filter((r) => JSON.parse(r.body).type === 'alert.reminder')
      .map((r) => r.startedAt - created);
    sent.forEach((ms, i) => expect(ms).toBeGreaterThanOrEqual((i + 1) * 1000 - 50));
  });

  it('stops when the alert resolves, and a rule without an interval never reminds', async () => {
    const p = await api.tenants.newProject();
    const r = await hook(p, ['alert.created', 'alert.reminder', 'alert.resolved']);
    await rule(api, p, {
      name: 'r',
      metric: 'temperature',
      threshold: 80,
      reminder_interval_seconds: 1,
    }).expect(201);
    await rule(api, p, { name: 'quiet', metric: 'humidity', threshold: 80 }).expect(201);
    await send(api, p, 'd', [90], { at });
    await send(api, p, 'h', [90], { at, metric: 'humidity' });
    await pipeline.idle(2);
    await r.waitFor(3, 15000);
    await send(api, p, 'd', [10], { at, start: 1 });
    await pipeline.idle(2);
    await sleep(2500);
    const rows = await reminderRows(p);
    const types = bodies(r).map((b) => b.type);
    expect(types.filter((t) => t === 'alert.created')).toHaveLength(2);
    expect(types.filter((t) => t === 'alert.resolved')).toHaveLength(1);
    expect(types.filter((t) => t === 'alert.reminder')).toHaveLength(rows.length);
    // Every reminder is of the rule with an interval.
    for (const b of bodies(r).filter((x) => x.type === 'alert.reminder'))
      expect(b.data.rule.name).toBe('r');
    const after = rows.length;
    await sleep(1500);
    expect(await reminderRows(p)).toHaveLength(after);
  });

  it('a reminder whose job Redis lost is scheduled again by the sweep', async () => {
    const p = await api.tenants.newProject();
    const r = await hook(p, ['alert.created', 'alert.reminder']);
    await rule(api, p, {
      metric: 'temperature',
      threshold: 80,
      reminder_interval_seconds: 1,
    }).expect(201);
    await send(api, p, 'd', [90], { at });
    await pipeline.idle(2);
    await r.waitFor(2, 15000);
    const [alert] = (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200))
      .body.items;
    const reminders = stack.worker.app.get(AlertReminders);
    // Nothing overdue while the chain runs: the sweep leaves it alone.
    expect(await reminders.sweep(500)).toBe(0);
    // Redis loses the waiting job (a flush, a failover without persistence).
    for (const job of await alertEvents.getJobs(['delayed', 'waiting']))
      if (job?.data.alertId === alert.id) await job.remove();
    await sleep(2500);
    const stalled = (await reminderRows(p)).length;
    await sleep(1500);
    expect(await reminderRows(p)).toHaveLength(stalled);
    expect(await reminders.sweep(0)).toBe(1);
    expect(await reminders.sweep(0)).toBe(0);
    // It resumes at one a second: the reminders missed meanwhile are not sent in a burst.
    await r.waitFor(1 + stalled + 1, 15000);
    await sleep(600);
    expect((await reminderRows(p)).length).toBeLessThanOrEqual(stalled + 2);
    await r.waitFor(1 + stalled + 3, 15000);
    const rows = await reminderRows(p);
    expect(rows).toEqual(rows.map((_, i) => i + 1));
  });

  it('refuses an interval under REMINDER_MIN_INTERVAL_SECONDS with 422 naming it', async () => {
    const strict = await startApi({});
    try {
      const p = await strict.tenants.newProject();
      const res = await rule(strict, p, { reminder_interval_seconds: 30 }).expect(422);
      expect(res.body.details).toEqual([
        {
          field: 'reminder_interval_seconds',
          message: 'reminder_interval_seconds must be at least 60 (REMINDER_MIN_INTERVAL_SECONDS)',
        },
      ]);
      const ok = await rule(strict, p, { reminder_interval_seconds: 3600 }).expect(201);
      expect(ok.body.reminder_interval_seconds).toBe(3600);
      await request(strict.server)
        .patch(`/rules/${ok.body.id}`)
        .set(p.headers)
        .send({ reminder_interval_seconds: 59 })
        .expect(422);
      const off = await request(strict.server)
        .patch(`/rules/${ok.body.id}`)
        .set(p.headers)
        .send({ reminder_interval_seconds: null })
        .expect(200);
      expect(off.body.reminder_interval_seconds).toBeNull();
      await rule(strict, p, { name: 'zero', reminder_interval_seconds: 0 }).expect(422);
    } finally {
      await strict.close();
    }
  });
});
