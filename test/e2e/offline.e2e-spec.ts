import { OfflineScan } from '@app/rules';
import { TestProject as Project } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, deviceIdOf, send, sleep, until } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { TestReceiver, TestReceivers } from '../support/subscriber';
import { Pipeline, RunningWorker, startWorker } from '../support/worker';

const at = clock(Date.UTC(2025, 0, 1, 12));
type Json = Record<string, any>;
/**
 * Offline after 1 s in this suite (the default floor is a minute); the periodic scan every
 * 300 ms, so alerts open without help, and the tests' own `scan()` calls race it (safe by
 * design: a rule is scanned by one scanner at a time).
 */
const ENV = { OFFLINE_MIN_SECONDS: '1', OFFLINE_SCAN_INTERVAL_MS: '300' };
const EVENTS = ['alert.acknowledged', 'device.offline', 'device.online'];

/** Offline rules: the real api, two workers (both scanning), a receiver. */
describe('offline rules (e2e)', () => {
  jest.setTimeout(60000);

  let stack: Stack;
  let second: RunningWorker;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;
  const receivers = new TestReceivers();

  beforeAll(async () => {
    stack = await startStack(ENV);
    ({ api, pipeline, db } = stack);
    second = await startWorker(ENV);
  });
  afterAll(async () => {
    // The suites after this one share the database: no offline rule of ours goes on.
    await db.query(`UPDATE rules SET enabled = false WHERE kind = 'offline'`);
    await second.close();
    await stack.close();
    await receivers.close();
  });

  const http = () => request(api.server);
  const scan = () => stack.worker.app.get(OfflineScan).run();
  const offlineRule = (p: Project, body: Json = {}) =>
    http()
      .post(`/projects/${p.projectId}/rules`)
      .set(p.headers)
      .send({ name: 'quiet', kind: 'offline', offline_after_seconds: 1, ...body });
  const hook = async (p: Project, eventTypes?: string[]): Promise<TestReceiver> => {
    const r = await receivers.start();
    await http()
      .post(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .send({ url: r.url, ...(eventTypes && { event_types: eventTypes }) })
      .expect(201);
    return r;
  };
  const types = (r: TestReceiver) => r.received.map((x) => (JSON.parse(x.body) as Json).type);
  const alertsOf = async (p: Project): Promise<Json[]> =>
    (await http().get(`/projects/${p.projectId}/alerts`).set(p.headers).expect(200)).body.items;
  const heard = async (p: Project, device: string, start = 0) => {
    await send(api, p, device, [1], { start, at });
    await pipeline.idle(2);
  };

  describe('API', () => {
    it('creates an offline rule: no metric, operator, threshold or window', async () => {
      const p = await api.tenants.newProject();
      const res = await offlineRule(p, { offline_after_seconds: 900 }).expect(201);
      expect(res.body).toMatchObject({
        kind: 'offline',
        offline_after_seconds: 900,
        metric: null,
        operator: null,
        threshold: null,
        window_n: null,
        required_k: null,
        scope: 'ALL',
      });
      const list = await http().get(`/projects/${p.projectId}/rules`).set(p.headers).expect(200);
      expect(list.body.items[0].kind).toBe('offline');
      // A threshold rule says so, and has no offline_after_seconds.
      const t = await http()
        .post(`/projects/${p.projectId}/rules`)
        .set(p.headers)
        .send({ name: 't', metric: 'x', operator: '>', threshold: 1, window_n: 1, required_k: 1 })
        .expect(201);
      expect(t.body).toMatchObject({ kind: 'threshold', offline_after_seconds: null });
    });

    it.each<[string, Json, string]>([
      ['a metric', { metric: 'temperature' }, 'metric'],
      ['a threshold', { threshold: 5 }, 'threshold'],
      ['a window', { window_n: 5 }, 'window_n'],
      ['hysteresis', { clear_k: 1 }, 'clear_k'],
      ['no offline_after_seconds', { offline_after_seconds: undefined }, 'offline_after_seconds'],
      ['offline_after_seconds 0', { offline_after_seconds: 0 }, 'offline_after_seconds'],
      ['an unknown kind', { kind: 'silent' }, 'kind'],
    ])('refuses an offline rule with %s: 422 naming %j', async (_what, body, field) => {
      const p = await api.tenants.newProject();
      const res = await offlineRule(p, body).expect(422);
      expect(res.body.details.map((d: Json) => d.field)).toContain(field);
    });

    it('refuses offline_after_seconds on a threshold rule, kind in a PATCH, and a backtest of an offline rule', async () => {
      const p = await api.tenants.newProject();
      const res = await http()
        .post(`/projects/${p.projectId}/rules`)
        .set(p.headers)
        .send({
          name: 't',
          metric: 'x',
          operator: '>',
          threshold: 1,
          window_n: 1,
          required_k: 1,
          offline_after_seconds: 60,
        })
        .expect(422);
      expect(res.body.details).toEqual([
        {
          field: 'offline_after_seconds',
          message: 'offline_after_seconds is for offline rules (kind: offline)',
        },
      ]);
      const r = await offlineRule(p).expect(201);
      await http()
        .patch(`/rules/${r.body.id}`)
        .set(p.headers)
        .send({ kind: 'threshold' })
        .expect(422);
      const patched = await http()
        .patch(`/rules/${r.body.id}`)
        .set(p.headers)
        .send({ metric: 'x' })
        .expect(422);
      expect(patched.body.details[0].field).toBe('metric');
      const longer = await http()
        .patch(`/rules/${r.body.id}`)
        .set(p.headers)
        .send({ offline_after_seconds: 120 })
        .expect(200);
      expect(longer.body.offline_after_seconds).toBe(120);
      const backtest = await http()
        .post(`/projects/${p.projectId}/rules/backtest`)
        .set(p.headers)
        .send({ rule_id: r.body.id, from: '2025-01-01T00:00:00Z', to: '2025-01-02T00:00:00Z' })
        .expect(422);
      expect(backtest.body.details[0].field).toBe('rule_id');
    });

    it('refuses offline_after_seconds under OFFLINE_MIN_SECONDS with 422 naming it', async () => {
      const strict = await startApi({});
      try {
        const p = await strict.tenants.newProject();
        const res = await request(strict.server)
          .post(`/projects/${p.projectId}/rules`)
          .set(p.headers)
          .send({ name: 'q', kind: 'offline', offline_after_seconds: 30 })
          .expect(422);
        expect(res.body.details).toEqual([
          {
            field: 'offline_after_seconds',
            message: 'offline_after_seconds must be at least 60 (OFFLINE_MIN_SECONDS)',
          },
        ]);
      } finally {
        await strict.close();
      }
    });
  });

  describe('what an offline rule does', () => {
    it('opens when a device goes quiet, resolves on its next reading, and opens again when it goes quiet again', async () => {
      const p = await api.tenants.newProject();
      const all = await hook(p, EVENTS);
      const classic = await hook(p);
      const r = await offlineRule(p).expect(201);
      await heard(p, 'd');
      const [alert] = await until('an offline alert', () => alertsOf(p), {
        done: (a) => a.length === 1,
        timeoutMs: 10000,
      });
      const device = await deviceIdOf(db, p.projectId, 'd');
      const [{ last_seen_at: lastSeen }] = await db.query(
        `SELECT last_seen_at FROM devices WHERE id = $1`,
        [device],
      );
      expect(alert).toMatchObject({ rule_id: r.body.id, device_id: device, status: 'open' });
      // Triggered when it went offline: last heard + 1 s.
      expect(new Date(alert.triggered_at).getTime()).toBe(new Date(lastSeen).getTime() + 1000);
      expect(alert.details.last_seen_at).toBe(new Date(lastSeen).toISOString());
      await all.waitFor(1, 10000);
      expect(types(all)).toEqual(['device.offline']);
      // Still quiet: later scans open nothing more.
      await sleep(1000);
      await scan();
      expect(await alertsOf(p)).toHaveLength(1);

      await http().post(`/alerts/${alert.id}/ack`).set(p.headers).expect(200);
      await heard(p, 'd', 1);
      await until('the alert resolved', async () => (await alertsOf(p))[0].status, {
        done: (s) => s === 'resolved',
        timeoutMs: 10000,
      });
      const [resolved] = await alertsOf(p);
      expect(resolved.details.resolution).toBe('device_online');
      await all.waitFor(3, 10000);
      // Deliveries run concurrently: the acknowledgement and device.online in either order.
      expect(types(all)[0]).toBe('device.offline');
      expect(types(all).slice(1).sort()).toEqual(['alert.acknowledged', 'device.online']);

      // Quiet again: a second alert.
      await until('a second offline alert', () => alertsOf(p), {
        done: (a) => a.length === 2,
        timeoutMs: 10000,
      });
      await all.waitFor(4, 10000);
      expect(types(all).at(-1)).toBe('device.offline');
      // A webhook without event_types meets only the acknowledgement.
      await classic.waitFor(1, 10000);
      expect(types(classic)).toEqual(['alert.acknowledged']);
    });

    it('a device that is sending, has never sent, or is outside the scope never goes offline', async () => {
      const p = await api.tenants.newProject();
      const r = await offlineRule(p, { scope: 'TAG', tag: 'hall' }).expect(201);
      for (const [externalId, tags] of [
        ['hall-quiet', ['hall']],
        ['hall-busy', ['hall']],
        ['hall-never', ['hall']],
        ['yard', ['yard']],
      ] as const)
        await http()
          .post(`/projects/${p.projectId}/devices`)
          .set(p.headers)
          .send({ external_id: externalId, tags })
          .expect(201);
      await heard(p, 'hall-quiet');
      await heard(p, 'yard');
      // hall-busy sends every 300 ms for 3 s.
      for (let i = 0; i < 10; i++) {
        await send(api, p, 'hall-busy', [1], { start: i, at });
        await sleep(300);
      }
      await pipeline.idle(2);
      await scan();
      await until('hall-quiet alerted', () => alertsOf(p), {
        done: (x) => x.length > 0,
        timeoutMs: 5000,
      });
      const alerts = await alertsOf(p);
      expect(alerts.map((a) => a.device_id)).toEqual([
        await deviceIdOf(db, p.projectId, 'hall-quiet'),
      ]);
      expect(alerts[0].rule_id).toBe(r.body.id);
    });

    it('an EXPLICIT rule watches its assigned devices only', async () => {
      const p = await api.tenants.newProject();
      const r = await offlineRule(p, { scope: 'EXPLICIT' }).expect(201);
      await heard(p, 'a');
      await heard(p, 'b');
      const a = await deviceIdOf(db, p.projectId, 'a');
      await http()
        .post(`/rules/${r.body.id}/devices`)
        .set(p.headers)
        .send({ device_ids: [a] })
        .expect(200);
      await sleep(1200);
      await scan();
      await until('a alerted', () => alertsOf(p), { done: (x) => x.length > 0, timeoutMs: 5000 });
      await sleep(700);
      expect((await alertsOf(p)).map((x) => x.device_id)).toEqual([a]);
    });

    it('a batch accepted but not yet stored counts as heard: a worker backlog is not a fleet gone quiet', async () => {
      const p = await api.tenants.newProject();
      // 5 s: time enough to pause and send again before d would go quiet, on a loaded CI box.
      await offlineRule(p, { offline_after_seconds: 5 }).expect(201);
      await heard(p, 'd');
      const device = await deviceIdOf(db, p.projectId, 'd');
      const [{ last_seen_at: lastSeen }] = await db.query(
        `SELECT last_seen_at FROM devices WHERE id = $1`,
        [device],
      );
      // The worker stops storing (paused here; a slow or stopped worker alike); d sends on.
      await pipeline.ingest.pause();
      try {
        await send(api, p, 'd', [1], { start: 1, at });
        expect(Date.now()).toBeLessThan(new Date(lastSeen).getTime() + 5000);
        // Past the 5 s since d was last stored: quiet but for the batch in the backlog.
        await sleep(new Date(lastSeen).getTime() + 5500 - Date.now());
        await scan();
        expect(await alertsOf(p)).toEqual([]);
      } finally {
        await pipeline.ingest.resume();
      }
      await pipeline.idle(2);
      // Stored: d was heard when that batch arrived. By now that too is more than 5 s ago,
      // so an alert may open, but only from the new arrival, never from the old one.
      const [{ last_seen_at: heardAgain }] = await db.query(
        `SELECT last_seen_at FROM devices WHERE id = $1`,
        [device],
      );
      expect(new Date(heardAgain).getTime()).toBeGreaterThan(new Date(lastSeen).getTime());
      await scan();
      for (const alert of await alertsOf(p))
        expect(alert.details.last_seen_at).toBe(new Date(heardAgain).toISOString());
    });

    it('reads each quiet device once, however long it stays quiet; two scanners open one alert', async () => {
      const p = await api.tenants.newProject();
      await offlineRule(p, { name: 'solo', offline_after_seconds: 3600 }).expect(201);
      for (let i = 0; i < 5; i++) await heard(p, `d${i}`);
      const scanners = [stack.worker.app.get(OfflineScan), second.app.get(OfflineScan)];
      const inAnHour = new Date(Date.now() + 3601 * 1000);
      await Promise.all(scanners.map((s) => s.run(inAnHour, { wait: true })));
      const alerts = await alertsOf(p);
      expect(alerts).toHaveLength(5);
      expect(new Set(alerts.map((a) => a.device_id)).size).toBe(5);
      const again = await scanners[0].run(new Date(inAnHour.getTime() + 60000), { wait: true });
      expect(again.devices).toBe(0);
      expect(again.opened).toBe(0);
    });
  });
});
