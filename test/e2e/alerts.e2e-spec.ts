import { QUEUES } from '@app/queue';
import { TestProject } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { at, deviceIdOf, rule, send, storedCount, until } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { openQueue, Pipeline } from '../support/worker';

describe('rules and alerts (e2e)', () => {
  // Each test waits for ingestion and evaluation to finish: more than jest's 5 s default on a busy machine.
  jest.setTimeout(30000);

  let stack: Stack;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;

  beforeAll(async () => {
    stack = await startStack();
    ({ api, pipeline, db } = stack);
  });
  afterAll(() => stack.close());

  const idle = () => pipeline.idle(2);
  const http = () => request(api.server);
  /** 5 of 5 temperature > 80 unless `body` says otherwise. */
  const newRule = (p: TestProject, body: Record<string, unknown>) =>
    rule(api, p, {
      name: 'rule',
      metric: 'temperature',
      threshold: 80,
      window_n: 5,
      required_k: 5,
      ...body,
    });
  const alerts = async (p: TestProject, query: Record<string, string> = {}) =>
    (await http().get(`/projects/${p.projectId}/alerts`).query(query).set(p.headers).expect(200))
      .body.items as Array<Record<string, any>>;

  describe('rules API', () => {
    it('creates, reads, lists, updates and deletes a rule', async () => {
      const p = await api.tenants.newProject();
      const created = await newRule(p, { cooldown_seconds: 300 }).expect(201);
      expect(created.body).toMatchObject({
        project_id: p.projectId,
        metric: 'temperature',
        operator: '>',
        threshold: 80,
        window_n: 5,
        required_k: 5,
        cooldown_seconds: 300,
        scope: 'ALL',
        tag: null,
        enabled: true,
      });
      const id = created.body.id;
      await http().get(`/rules/${id}`).set(p.headers).expect(200);
      const list = await http().get(`/projects/${p.projectId}/rules`).set(p.headers).expect(200);
      expect(list.body.items.map((r: { id: string }) => r.id)).toEqual([id]);
      const patched = await http()
        .patch(`/rules/${id}`)
        .set(p.headers)
        .send({ threshold: 85.5, scope: 'TAG', tag: 'hot' })
        .expect(200);
      expect(patched.body).toMatchObject({ threshold: 85.5, scope: 'TAG', tag: 'hot' });
      const back = await http()
        .patch(`/rules/${id}`)
        .set(p.headers)
        .send({ scope: 'ALL' })
        .expect(200);
      expect(back.body.tag).toBeNull();
      await http().delete(`/rules/${id}`).set(p.headers).expect(204);
      await http().get(`/rules/${id}`).set(p.headers).expect(404);
    });

    it.each([
      ['unknown operator', { operator: '=>' }, 'operator'],
      ['k above n', { window_n: 3, required_k: 4 }, 'required_k'],
      ['n above 1000', { window_n: 1001, required_k: 1 }, 'window_n'],
      ['k of 0', { required_k: 0 }, 'required_k'],
      ['TAG without tag', { scope: 'TAG' }, 'tag'],
      ['tag without TAG', { tag: 'x' }, 'tag'],
      ['negative cooldown', { cooldown_seconds: -1 }, 'cooldown_seconds'],
      ['threshold as string', { threshold: '80' }, 'threshold'],
      ['threshold null', { threshold: null }, 'threshold'],
      ['unknown scope', { scope: 'SOME' }, 'scope'],
      ['fractional window', { window_n: 2.5 }, 'window_n'],
      ['clear_threshold above a > threshold', { clear_threshold: 85 }, 'clear_threshold'],
      [
        'clear_threshold below a < threshold',
        { operator: '<', clear_threshold: 75 },
        'clear_threshold',
      ],
      ['clear_threshold on an == rule', { operator: '==', clear_threshold: 80 }, 'clear_threshold'],
      ['clear_threshold as string', { clear_threshold: '75' }, 'clear_threshold'],
      ['clear_k above window_n', { clear_k: 6 }, 'clear_k'],
      ['clear_k of 0', { clear_k: 0 }, 'clear_k'],
    ])('refuses %s with 422 naming the field', async (_label, patch, field) => {
      const p = await api.tenants.newProject();
      const res = await newRule(p, patch).expect(422);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      const patchRes = await http()
        .patch(`/rules/${(await newRule(p, {}).expect(201)).body.id}`)
        .set(p.headers)
        .send(field === 'required_k' && 'window_n' in patch ? { required_k: 6 } : patch);
      expect(patchRes.status).toBe(422);
    });

    it('keeps hysteresis fields, checks a PATCH against the rule it leaves, and removes them with null', async () => {
      const p = await api.tenants.newProject();
      const created = await newRule(p, { clear_threshold: 75, clear_k: 4 }).expect(201);
      expect(created.body).toMatchObject({ clear_threshold: 75, clear_k: 4 });
      expect((await newRule(p, { name: 'plain' }).expect(201)).body).toMatchObject({
        clear_threshold: null,
        clear_k: null,
      });
      const id = created.body.id;
      const below = await http().patch(`/rules/${id}`).set(p.headers).send({ threshold: 70 });
      expect(below.status).toBe(422);
      expect(below.body.details).toEqual([
        {
          field: 'clear_threshold',
          message: 'clear_threshold (75) must be at most threshold (70) for a > rule',
        },
      ]);
      const shrunk = await http()
        .patch(`/rules/${id}`)
        .set(p.headers)
        .send({ window_n: 3, required_k: 3 });
      expect(shrunk.status).toBe(422);
      expect(shrunk.body.details.map((d: { field: string }) => d.field)).toEqual(['clear_k']);
      const cleared = await http()
        .patch(`/rules/${id}`)
        .set(p.headers)
        .send({ clear_threshold: null, clear_k: null, threshold: 70 })
        .expect(200);
      expect(cleared.body).toMatchObject({ threshold: 70, clear_threshold: null, clear_k: null });
    });

    it("assigns devices to EXPLICIT rules idempotently, refusing another project's device (404)", async () => {
      const p = await api.tenants.newProject();
      const other = await api.tenants.newProject();
      const mine = await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'm' })
        .expect(201);
      const theirs = await http()
        .post(`/projects/${other.projectId}/devices`)
        .set(other.headers)
        .send({ external_id: 't' })
        .expect(201);
      const r = (await newRule(p, { scope: 'EXPLICIT' }).expect(201)).body.id;
      for (let i = 0; i < 2; i++) {
        const res = await http()
          .post(`/rules/${r}/devices`)
          .set(p.headers)
          .send({ device_ids: [mine.body.id] })
          .expect(200);
        expect(res.body).toEqual({ device_ids: [mine.body.id] });
      }
      await http()
        .post(`/rules/${r}/devices`)
        .set(p.headers)
        .send({ device_ids: [theirs.body.id] })
        .expect(404);
      await http()
        .post(`/rules/${r}/devices`)
        .set(p.headers)
        .send({ device_ids: ['nope'] })
        .expect(422);
      expect(
        (await http().get(`/rules/${r}/devices`).set(p.headers).expect(200)).body.device_ids,
      ).toEqual([mine.body.id]);
      await http().delete(`/rules/${r}/devices/${mine.body.id}`).set(p.headers).expect(204);
      await http().delete(`/rules/${r}/devices/${mine.body.id}`).set(p.headers).expect(404);
    });
  });

  describe('evaluation', () => {
    it('the reference example (5 of 5 > 80, readings 95–99) opens one alert with the rule and window', async () => {
      const p = await api.tenants.newProject();
      const r = (await newRule(p, { name: 'High Temp', cooldown_seconds: 300 }).expect(201)).body;
      await send(api, p, 'sensor-01', [95, 96, 97, 98, 99]);
      await idle();
      const list = await alerts(p);
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({
        rule_id: r.id,
        status: 'open',
        triggered_at: at(4),
        resolved_at: null,
      });
      expect(list[0].details.rule).toMatchObject({
        id: r.id,
        name: 'High Temp',
        threshold: 80,
        window_n: 5,
        required_k: 5,
      });
      expect(list[0].details.window).toEqual(
        [95, 96, 97, 98, 99].map((v, i) => ({ ts: at(i), value: v, breached: true })),
      );
      const one = await http().get(`/alerts/${list[0].id}`).set(p.headers).expect(200);
      expect(one.body).toEqual(list[0]);
    });

    const bursts = () => {
      // 8 segments of 16 readings: 5 hot then 11 cold → 8 openings and 8 resolutions.
      const values: number[] = [];
      for (let s = 0; s < 8; s++) values.push(...[100, 100, 100, 100, 100], ...Array(11).fill(0));
      return values;
    };

    it('eight bursts in one 128-reading stream open eight alerts in one batch', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { threshold: 50, window_n: 5, required_k: 3 }).expect(201);
      await send(api, p, 'bursty', bursts());
      await idle();
      const list = await alerts(p);
      expect(list).toHaveLength(8);
      expect(list.every((a) => a.status === 'resolved')).toBe(true);
    });

    it('… and the same eight in random batches of 1–7', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { threshold: 50, window_n: 5, required_k: 3 }).expect(201);
      const values = bursts();
      let seed = 42;
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < values.length;) {
        const n = Math.min(values.length - i, 1 + Math.floor(rnd() * 7));
        await send(api, p, 'bursty', values.slice(i, i + n), { start: i });
        i += n;
      }
      await idle();
      const list = await alerts(p);
      expect(list).toHaveLength(8);
      expect(list.map((a) => a.triggered_at).sort()).toEqual(
        Array.from({ length: 8 }, (_, s) => at(s * 16 + 2)),
      );
    });

    it('counts cooldown in reading time and resolves when the condition clears', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { window_n: 1, required_k: 1, cooldown_seconds: 10 }).expect(201);
      // hot at 0, cold at 1 (resolves), hot at 2..9 (within 10 s of 0: no alert), hot at 10 (opens).
      await send(api, p, 'cool', [90, 10, 90, 90, 90, 90, 90, 90, 90, 90, 90]);
      await idle();
      const list = await alerts(p);
      expect(list.map((a) => [a.triggered_at, a.status, a.resolved_at])).toEqual([
        [at(10), 'open', null],
        [at(0), 'resolved', at(1)],
      ]);
    });

    it('with a clear threshold, resolves only once the value is back across it', async () => {
      const p = await api.tenants.newProject();
      const r = await newRule(p, { window_n: 1, required_k: 1, clear_threshold: 75 }).expect(201);
      // 85 opens; 78 and 79 are below 80 but not back under 75; 74 resolves; 81 opens again.
      await send(api, p, 'hover', [85, 78, 79, 74, 81]);
      await idle();
      const list = await alerts(p);
      expect(list.map((a) => [a.triggered_at, a.status, a.resolved_at])).toEqual([
        [at(4), 'open', null],
        [at(0), 'resolved', at(3)],
      ]);
      expect(list[1].details.rule).toMatchObject({ id: r.body.id, clear_threshold: 75 });
      expect(list[1].details.resolution).toBe('condition_cleared');
    });

    it('acknowledges and resolves by hand, and opens again only after the cooldown', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { window_n: 1, required_k: 1, cooldown_seconds: 5 }).expect(201);
      await send(api, p, 'manual', [90]);
      await idle();
      const [alert] = await alerts(p);
      const acked = await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      expect(acked.body).toMatchObject({
        status: 'acknowledged',
        acknowledged_at: expect.any(String),
      });
      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      const resolved = await http().post(`/alerts/${alert.id}/resolve`).set(p.headers).expect(200);
      expect(resolved.body).toMatchObject({ status: 'resolved', resolved_at: expect.any(String) });
      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(409);
      await http().post(`/alerts/${alert.id}/resolve`).set(p.headers).expect(200);

      await send(api, p, 'manual', [90, 90, 90, 90, 90], { start: 1 }); // ts 1..5: still hot; 5 s after 0 → reopens at 5
      await idle();
      const list = await alerts(p);
      expect(list.map((a) => [a.triggered_at, a.status])).toEqual([
        [at(5), 'open'],
        [at(0), 'resolved'],
      ]);
      const readOnly = await api.tenants.newKey(p.projectId, ['read']);
      await http().post(`/alerts/${alert.id}/resolve`).set('X-API-Key', readOnly.key).expect(403);
      expect((await alerts(p, { status: 'open' })).map((a) => a.triggered_at)).toEqual([at(5)]);
    });

    it('TAG rules follow device tags; EXPLICIT rules only assigned devices', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, {
        window_n: 1,
        required_k: 1,
        scope: 'TAG',
        tag: 'hot-zone',
        name: 'tag',
      }).expect(201);
      const explicit = (
        await newRule(p, {
          window_n: 1,
          required_k: 1,
          scope: 'EXPLICIT',
          name: 'explicit',
        }).expect(201)
      ).body.id;
      await send(api, p, 'a', [90]);
      await send(api, p, 'b', [90]);
      await idle();
      expect(await alerts(p)).toHaveLength(0);

      const a = await deviceIdOf(db, p.projectId, 'a');
      const b = await deviceIdOf(db, p.projectId, 'b');
      await http()
        .patch(`/devices/${a}`)
        .set(p.headers)
        .send({ tags: ['hot-zone'] })
        .expect(200);
      await http()
        .post(`/rules/${explicit}/devices`)
        .set(p.headers)
        .send({ device_ids: [b] })
        .expect(200);
      await send(api, p, 'a', [91], { start: 1 });
      await send(api, p, 'b', [91], { start: 1 });
      await idle();
      const list = await alerts(p);
      expect(list.map((x) => [x.device_id, x.details.rule.name]).sort()).toEqual(
        [
          [a, 'tag'],
          [b, 'explicit'],
        ].sort(),
      );
      const forA = await http().get(`/devices/${a}/alerts`).set(p.headers).expect(200);
      expect(forA.body.items).toHaveLength(1);
    });

    it("changing a rule's metric starts its window afresh", async () => {
      const p = await api.tenants.newProject();
      const r = (await newRule(p, { window_n: 2, required_k: 2 }).expect(201)).body.id;
      await send(api, p, 'swap', [90]); // one breach of temperature
      await idle();
      await http().patch(`/rules/${r}`).set(p.headers).send({ metric: 'humidity' }).expect(200);
      await http()
        .post('/telemetry')
        .set(p.headers)
        .send({ device_external_id: 'swap', events: [{ ts: at(1), data: { humidity: 95 } }] })
        .expect(202);
      await idle();
      expect(await alerts(p)).toHaveLength(0); // one humidity reading can't make 2 of 2
    });

    it('resolves an alert whose rule no longer covers the device (tag removed)', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { window_n: 1, required_k: 1, scope: 'TAG', tag: 'hot' }).expect(201);
      const d = await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'tagged', tags: ['hot'] })
        .expect(201);
      await send(api, p, 'tagged', [90]);
      await idle();
      expect((await alerts(p))[0].status).toBe('open');
      await http().patch(`/devices/${d.body.id}`).set(p.headers).send({ tags: [] }).expect(200);
      await send(api, p, 'tagged', [91], { start: 1 });
      await idle();
      const [alert] = await alerts(p);
      expect(alert).toMatchObject({
        status: 'resolved',
        details: expect.objectContaining({ resolution: 'rule_no_longer_applies' }),
      });
    });

    it('stores late readings but does not evaluate them', async () => {
      const p = await api.tenants.newProject();
      await newRule(p, { window_n: 1, required_k: 1 }).expect(201);
      await send(api, p, 'late', [10, 10, 10], { start: 100 });
      await idle();
      await send(api, p, 'late', [99, 99], { start: 50 }); // older than what was evaluated
      await idle();
      expect(await alerts(p)).toHaveLength(0);
      const id = await deviceIdOf(db, p.projectId, 'late');
      expect(await storedCount(db, id!)).toBe(5);
    });

    it("disabling a rule resolves its open alerts; the api's event goes through the outbox to the queue", async () => {
      const p = await api.tenants.newProject();
      const r = (await newRule(p, { window_n: 1, required_k: 1 }).expect(201)).body.id;
      await send(api, p, 'off', [90]);
      await idle();
      expect((await alerts(p))[0].status).toBe('open');
      await http().patch(`/rules/${r}`).set(p.headers).send({ enabled: false }).expect(200);
      const [closed] = await alerts(p);
      expect(closed).toMatchObject({
        status: 'resolved',
        details: expect.objectContaining({ resolution: 'rule_disabled' }),
      });
      await send(api, p, 'off', [95], { start: 1 });
      await idle();
      expect(await alerts(p)).toHaveLength(1);

      const events = async () =>
        (await db.query(
          `SELECT type, dispatched_at, payload FROM alert_events WHERE project_id = $1 ORDER BY created_at`,
          [p.projectId],
        )) as Array<{
          type: string;
          dispatched_at: Date | null;
          payload: Record<string, any>;
        }>;
      expect((await events()).map((e) => e.type)).toEqual(['alert.created', 'alert.resolved']);
      const relayed = await until('every alert event dispatched', events, {
        done: (list) => list.every((e) => e.dispatched_at),
        timeoutMs: 5000,
        everyMs: 100,
      });
      expect(relayed.every((e) => e.dispatched_at)).toBe(true);
      expect(relayed[0].payload).toMatchObject({
        project_id: p.projectId,
        rule: { id: r, name: 'rule' },
        device: { external_id: 'off' },
        alert: { status: 'open' },
      });
      // The evaluation fanned its alert.created out in its own transaction; the api's
      // alert.resolved went through the outbox: relayed once (the webhook fan-out may
      // already have consumed it).
      const q = openQueue(QUEUES.ALERT_EVENTS);
      try {
        const jobs = await q.getJobs(['waiting', 'active', 'completed']);
        const mine = jobs.filter((j) => j.data.projectId === p.projectId);
        expect(mine.map((j) => j.data.eventId)).toEqual(
          (
            await db.query(
              `SELECT id FROM alert_events WHERE project_id = $1 AND type = 'alert.resolved'`,
              [p.projectId],
            )
          ).map((e: { id: string }) => e.id),
        );
      } finally {
        await q.close();
      }
    });
  });
});
