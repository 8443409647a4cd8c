import { TestProject as Project } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { clock, deviceIdOf, rule, send, sleep, until } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { TestReceiver, TestReceivers } from '../support/subscriber';
import { Pipeline } from '../support/worker';

const at = clock(Date.UTC(2025, 0, 1, 12));
type Json = Record<string, any>;

/** Silences end to end: the real api, worker (fan-out and release duty) and a receiver. */
describe('silences (e2e)', () => {
  jest.setTimeout(60000);

  let stack: Stack;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;
  const receivers = new TestReceivers();

  beforeAll(async () => {
    stack = await startStack();
    ({ api, pipeline, db } = stack);
  });
  afterAll(async () => {
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const later = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
  const silence = (p: Project, body: Json) =>
    http()
      .post(`/projects/${p.projectId}/silences`)
      .set(p.headers)
      .send({ comment: 'maintenance', created_by: 'jane', ends_at: later(3600), ...body });
  const expire = async (p: Project, id: string) =>
    (await http().post(`/silences/${id}/expire`).set(p.headers).expect(200)).body as Json;

  /** A project with a 1-of-1 `temperature > 80` rule, a device `d` and a webhook. */
  const setUp = async (): Promise<{ p: Project; ruleId: string; hook: TestReceiver }> => {
    const p = await api.tenants.newProject();
    const hook = await receivers.start();
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: hook.url })
      .expect(201);
    const r = await rule(api, p, { name: 'hot', metric: 'temperature', threshold: 80 }).expect(201);
    await http()
      .post(`/projects/${p.projectId}/devices`)
      .set(p.headers)
      .send({ external_id: 'd', tags: ['hall'] })
      .expect(201);
    return { p, ruleId: r.body.id, hook };
  };
  /** Sends readings of `d` from at(start) and waits until every event is fanned out. */
  const readings = async (p: Project, values: number[], start: number) => {
    await send(api, p, 'd', values, { start, at });
    await pipeline.idle(2);
    await dispatched(p);
  };
  const dispatched = (p: Project) =>
    until(
      'every alert event dispatched',
      async () =>
        (
          await db.query(
            `SELECT count(*) FILTER (WHERE dispatched_at IS NULL)::int AS n FROM alert_events
              WHERE project_id = $1`,
            [p.projectId],
          )
        )[0].n as number,
      { done: (n) => n === 0, timeoutMs: 20000, everyMs: 50 },
    );
  const alertsOf = async (p: Project) =>
    (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200)).body
      .items as Json[];
  const types = (hook: TestReceiver) => hook.received.map((r) => JSON.parse(r.body).type);
  /** Longer than the release duty's period (2 s) and a relay sweep: what was owed went out. */
  const settled = () => sleep(3500);

  describe('API', () => {
    it('creates, reads, lists by state and expires', async () => {
      const { p, ruleId } = await setUp();
      const active = await silence(p, { rule_id: ruleId }).expect(201);
      expect(active.body).toMatchObject({
        project_id: p.projectId,
        rule_id: ruleId,
        device_id: null,
        tag: null,
        comment: 'maintenance',
        created_by: 'jane',
        state: 'active',
      });
      const pending = await silence(p, { tag: 'hall', starts_at: later(600) }).expect(201);
      expect(pending.body.state).toBe('pending');
      expect(
        (await http().get(`/silences/${active.body.id}`).set(p.headers).expect(200)).body,
      ).toEqual(active.body);
      const list = async (state?: string) =>
        (
          await http()
            .get(`/projects/${p.projectId}/silences`)
            .query(state ? { state } : {})
            .set(p.headers)
            .expect(200)
        ).body.items.map((s: Json) => s.id);
      expect(await list()).toEqual([active.body.id, pending.body.id]);
      expect(await list('active')).toEqual([active.body.id]);
      expect(await list('pending')).toEqual([pending.body.id]);
      expect(await list('expired')).toEqual([]);

      const ended = await expire(p, active.body.id);
      expect(ended.state).toBe('expired');
      expect(new Date(ended.ends_at).getTime()).toBeLessThanOrEqual(Date.now());
      expect(await expire(p, active.body.id)).toEqual(ended);
      const never = await expire(p, pending.body.id);
      expect(never.state).toBe('expired');
      expect(new Date(never.starts_at) < new Date(never.ends_at)).toBe(true);
      expect(await list('expired')).toEqual([active.body.id, pending.body.id]);
    });

    it.each([
      ['no matcher', {}, 'rule_id'],
      ['an end in the past', { tag: 'hall', ends_at: '2020-01-01T00:00:00Z' }, 'ends_at'],
      [
        'an end before the start',
        { tag: 'hall', starts_at: later(7200), ends_at: later(3600) },
        'ends_at',
      ],
      ['no end', { tag: 'hall', ends_at: undefined }, 'ends_at'],
      ['no comment', { tag: 'hall', comment: undefined }, 'comment'],
      ['no author', { tag: 'hall', created_by: '' }, 'created_by'],
      ['a bad tag', { tag: 'a b' }, 'tag'],
      ['a bad rule id', { rule_id: 'r' }, 'rule_id'],
    ])('refuses %s with 422 naming %s', async (_label, body, field) => {
      const { p } = await setUp();
      const res = await silence(p, body).expect(422);
      expect(res.body.details.map((d: Json) => d.field)).toContain(field);
    });

    it("404s another project's rule, device or silence", async () => {
      const { p } = await setUp();
      const other = await setUp();
      const theirDevice = await deviceIdOf(db, other.p.projectId, 'd');
      await silence(p, { rule_id: other.ruleId }).expect(404);
      await silence(p, { device_id: theirDevice }).expect(404);
      const theirs = await silence(other.p, { tag: 'hall' }).expect(201);
      await http().get(`/silences/${theirs.body.id}`).set(p.headers).expect(404);
      await http().post(`/silences/${theirs.body.id}/expire`).set(p.headers).expect(404);
      expect(
        (await http().get(`/silences/${theirs.body.id}`).set(other.p.headers).expect(200)).body
          .state,
      ).toBe('active');
    });
  });

  describe('what a silence does', () => {
    it('mutes an alert that opens and resolves under it, keeps its record, and sends nothing after', async () => {
      const { p, ruleId, hook } = await setUp();
      const s = await silence(p, { rule_id: ruleId }).expect(201);
      await readings(p, [90, 10], 0);
      const [alert] = await alertsOf(p);
      expect(alert).toMatchObject({ status: 'resolved', silenced_by: s.body.id });
      const events = await db.query(
        // One evaluation wrote both, at one created_at: by type to compare.
        `SELECT type, silenced_by FROM alert_events WHERE project_id = $1 ORDER BY created_at, type`,
        [p.projectId],
      );
      expect(events).toEqual([
        { type: 'alert.created', silenced_by: s.body.id },
        { type: 'alert.resolved', silenced_by: s.body.id },
      ]);
      await expire(p, s.body.id);
      await settled();
      expect(hook.received).toEqual([]);
      // Not muted any more: the next alert is sent as always.
      await readings(p, [90], 2);
      await hook.waitFor(1);
      expect(types(hook)).toEqual(['alert.created']);
    });

    it('sends one notification, the latest state, when it ends on an alert still active', async () => {
      const { p, hook } = await setUp();
      const device = await deviceIdOf(db, p.projectId, 'd');
      const s = await silence(p, { device_id: device }).expect(201);
      await readings(p, [90], 0);
      const [alert] = await alertsOf(p);
      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      await dispatched(p);
      await settled();
      expect(hook.received).toEqual([]);
      await expire(p, s.body.id);
      await hook.waitFor(1);
      await settled();
      expect(types(hook)).toEqual(['alert.acknowledged']);
      expect(JSON.parse(hook.received[0].body).data.alert).toMatchObject({
        id: alert.id,
        status: 'acknowledged',
      });
      // Resolving it afterwards is sent as always.
      await readings(p, [10], 1);
      await hook.waitFor(2);
      expect(types(hook)).toEqual(['alert.acknowledged', 'alert.resolved']);
    });

    it('overlapping silences: the alert is owed its notification only when the last one ends', async () => {
      const { p, ruleId, hook } = await setUp();
      const byRule = await silence(p, { rule_id: ruleId }).expect(201);
      const byTag = await silence(p, { tag: 'hall' }).expect(201);
      await readings(p, [90], 0);
      await expire(p, byRule.body.id);
      await settled();
      expect(hook.received).toEqual([]);
      await expire(p, byTag.body.id);
      await hook.waitFor(1);
      await settled();
      expect(types(hook)).toEqual(['alert.created']);
    });

    it('a silence made while an alert is open mutes what happens next, and ends on its own', async () => {
      const { p, ruleId, hook } = await setUp();
      await readings(p, [90], 0);
      await hook.waitFor(1);
      const [alert] = await alertsOf(p);
      await silence(p, { rule_id: ruleId, ends_at: later(4) }).expect(201);
      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      await dispatched(p);
      expect((await alertsOf(p))[0].silenced_by).not.toBeNull();
      expect(types(hook)).toEqual(['alert.created']);
      // Ends by itself after 4 s; the acknowledgement goes out then, once.
      await hook.waitFor(2, 15000);
      await settled();
      expect(types(hook)).toEqual(['alert.created', 'alert.acknowledged']);
    });

    it('a silence not yet started, or matching another device, mutes nothing', async () => {
      const { p, ruleId, hook } = await setUp();
      await silence(p, { rule_id: ruleId, starts_at: later(600) }).expect(201);
      await silence(p, { tag: 'elsewhere' }).expect(201);
      await readings(p, [90], 0);
      await hook.waitFor(1);
      expect((await alertsOf(p))[0].silenced_by).toBeNull();
    });
  });
});
