import { readEnv } from '@app/config';
import { TestProject } from '@app/testing';
import fc from 'fast-check';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { at, deviceIdOf, rule, send } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { Pipeline } from '../support/worker';

/** `POST /projects/{id}/rules/backtest`: docs/rules.md#backtest. */
describe('rule backtest (e2e)', () => {
  jest.setTimeout(120000);

  let stack: Stack;
  let api: RunningApi;
  let pipeline: Pipeline;
  let db: DataSource;

  beforeAll(async () => {
    stack = await startStack();
    ({ api, pipeline, db } = stack);
  });
  afterAll(() => stack.close());

  const http = () => request(api.server);
  const backtest = (p: TestProject, body: Record<string, unknown>) =>
    http()
      .post(`/projects/${p.projectId}/rules/backtest`)
      .set(p.headers)
      .send({ from: at(0), to: at(3600), ...body });
  const HOVER = {
    metric: 'temperature',
    operator: '>',
    threshold: 80,
    window_n: 1,
    required_k: 1,
    clear_threshold: 75,
  };
  /** Everything the worker writes for alerts and evaluation state, to show a backtest writes none. */
  const written = async (projectId: string) =>
    (
      await db.query(
        `SELECT (SELECT count(*) FROM alerts WHERE project_id = $1)::int AS alerts,
                (SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id
                  WHERE a.project_id = $1)::int AS events,
                (SELECT count(*) FROM rule_device_state s JOIN devices d ON d.id = s.device_id
                  WHERE d.project_id = $1)::int AS states,
                (SELECT count(*) FROM devices WHERE project_id = $1
                    AND evaluated_until IS NOT NULL)::int AS cursors`,
        [projectId],
      )
    )[0];

  it('answers with the transitions a rule would have produced, and writes nothing', async () => {
    const p = await api.tenants.newProject();
    await send(api, p, 'hover', [85, 78, 79, 74, 81, null]);
    await pipeline.idle(2);
    const before = await written(p.projectId);
    const res = await backtest(p, { rule: HOVER }).expect(200);
    expect(res.body).toMatchObject({
      rule_id: null,
      rule: { ...HOVER, cooldown_seconds: 0, clear_k: null },
      from: at(0),
      to: at(3600),
      readings: 5,
      opened: 2,
      resolved: 1,
    });
    const [device] = res.body.devices;
    expect(device).toMatchObject({
      device_id: await deviceIdOf(db, p.projectId, 'hover'),
      external_id: 'hover',
      readings: 5,
      opened: 2,
      resolved: 1,
      open_at_end: true,
      truncated: false,
    });
    expect(device.transitions).toEqual([
      { kind: 'open', at: at(0), window: [{ ts: at(0), value: 85, breached: true }] },
      { kind: 'resolve', at: at(3) },
      { kind: 'open', at: at(4), window: [{ ts: at(4), value: 81, breached: true }] },
    ]);
    // Without hysteresis it resolves at the first reading under 80 instead.
    const plain = await backtest(p, { rule: { ...HOVER, clear_threshold: null } }).expect(200);
    expect(
      plain.body.devices[0].transitions.map((t: { kind: string; at: string }) => [t.kind, t.at]),
    ).toEqual([
      ['open', at(0)],
      ['resolve', at(1)],
      ['open', at(4)],
    ]);
    expect(await written(p.projectId)).toEqual(before);
  });

  it('from is inclusive, to exclusive; a saved rule with changes; the first transitions_limit in full', async () => {
    const p = await api.tenants.newProject();
    await send(api, p, 'd', [90, 10, 90, 10, 90, 10, 90, 10]);
    await pipeline.idle(2);
    const saved = await rule(api, p, {
      name: 'hot',
      metric: 'temperature',
      threshold: 80,
      enabled: false,
    }).expect(201);
    const ranged = await backtest(p, { rule_id: saved.body.id, from: at(2), to: at(6) }).expect(
      200,
    );
    expect(ranged.body).toMatchObject({
      rule_id: saved.body.id,
      readings: 4,
      opened: 2,
      resolved: 2,
    });
    const changed = await backtest(p, {
      rule_id: saved.body.id,
      rule: { threshold: 95 },
    }).expect(200);
    expect(changed.body).toMatchObject({
      rule: { threshold: 95, metric: 'temperature' },
      opened: 0,
    });
    const limited = await backtest(p, { rule_id: saved.body.id, transitions_limit: 1 }).expect(200);
    expect(limited.body.devices[0]).toMatchObject({ opened: 4, resolved: 4, truncated: true });
    expect(limited.body.devices[0].transitions).toHaveLength(1);
    const cooled = await backtest(p, {
      rule_id: saved.body.id,
      rule: { cooldown_seconds: 3 },
    }).expect(200);
    expect(
      cooled.body.devices[0].transitions.filter((t: { kind: string }) => t.kind === 'open'),
    ).toHaveLength(2);
  });

  it("covers device_ids, a tag, or the saved rule's own scope", async () => {
    const p = await api.tenants.newProject();
    for (const d of ['a', 'b', 'c']) await send(api, p, d, [90]);
    await pipeline.idle(2);
    const ids = Object.fromEntries(
      await Promise.all(
        ['a', 'b', 'c'].map(async (d) => [d, (await deviceIdOf(db, p.projectId, d))!] as const),
      ),
    );
    await http()
      .patch(`/devices/${ids.b}`)
      .set(p.headers)
      .send({ tags: ['hall'] })
      .expect(200);
    const names = (res: request.Response) =>
      res.body.devices.map((d: { external_id: string }) => d.external_id);
    const r = { metric: 'temperature', operator: '>', threshold: 80, window_n: 1, required_k: 1 };
    expect(names(await backtest(p, { rule: r }).expect(200))).toEqual(['a', 'b', 'c']);
    expect(names(await backtest(p, { rule: r, tag: 'hall' }).expect(200))).toEqual(['b']);
    expect(
      names(await backtest(p, { rule: r, device_ids: [ids.c, ids.a, ids.c] }).expect(200)),
    ).toEqual(['a', 'c']);
    const explicit = await rule(api, p, { ...r, name: 'x', scope: 'EXPLICIT' }).expect(201);
    expect(names(await backtest(p, { rule_id: explicit.body.id }).expect(200))).toEqual([]);
    await http()
      .post(`/rules/${explicit.body.id}/devices`)
      .set(p.headers)
      .send({ device_ids: [ids.c] })
      .expect(200);
    expect(names(await backtest(p, { rule_id: explicit.body.id }).expect(200))).toEqual(['c']);
    const tagged = await rule(api, p, { ...r, name: 't', scope: 'TAG', tag: 'hall' }).expect(201);
    expect(names(await backtest(p, { rule_id: tagged.body.id }).expect(200))).toEqual(['b']);
  });

  it.each([
    ['no rule at all', {}, 'rule'],
    [
      'a rule without its metric',
      { rule: { operator: '>', threshold: 1, window_n: 1, required_k: 1 } },
      'rule.metric',
    ],
    ['k above n', { rule: { ...HOVER, window_n: 2, required_k: 3 } }, 'rule.required_k'],
    [
      'clear_threshold on the wrong side',
      { rule: { ...HOVER, clear_threshold: 90 } },
      'rule.clear_threshold',
    ],
    ['a threshold as string', { rule: { ...HOVER, threshold: '80' } }, 'rule.threshold'],
    ['to before from', { rule: HOVER, from: at(10), to: at(5) }, 'to'],
    ['to missing', { rule: HOVER, to: undefined }, 'to'],
    ['from as nonsense', { rule: HOVER, from: 'last week' }, 'from'],
    ['rule_id not a UUID', { rule_id: 'r1' }, 'rule_id'],
    ['an unknown field', { rule: HOVER, scope: 'ALL' }, 'scope'],
    ['transitions_limit too big', { rule: HOVER, transitions_limit: 1001 }, 'transitions_limit'],
  ])('refuses %s with 422 naming %s', async (_label, body, field) => {
    const p = await api.tenants.newProject();
    const res = await backtest(p, body).expect(422);
    expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it("404s another project's rule or device, and a rule that does not exist", async () => {
    const p = await api.tenants.newProject();
    const other = await api.tenants.newProject();
    await send(api, other, 'theirs', [90]);
    await pipeline.idle(2);
    const theirRule = await rule(api, other, {}).expect(201);
    const theirDevice = (await deviceIdOf(db, other.projectId, 'theirs'))!;
    await backtest(p, { rule_id: theirRule.body.id }).expect(404);
    await backtest(p, { rule_id: '00000000-0000-4000-8000-000000000000' }).expect(404);
    const res = await backtest(p, { rule: HOVER, device_ids: [theirDevice] }).expect(404);
    expect(res.body.message).toContain(theirDevice);
    await http()
      .post(`/projects/${p.projectId}/rules/backtest`)
      .set(other.headers)
      .send({ rule: HOVER, from: at(0), to: at(1) })
      .expect(404);
  });

  describe('bounded', () => {
    let small: RunningApi;
    beforeAll(async () => {
      small = await startApi({ BACKTEST_MAX_READINGS: '7', BACKTEST_MAX_DEVICES: '2' });
    });
    afterAll(() => small.close());

    it('by BACKTEST_MAX_READINGS and BACKTEST_MAX_DEVICES, each a 422 naming it', async () => {
      const p = await api.tenants.newProject();
      await send(api, p, 'a', [1, 2, 3, 4]);
      await send(api, p, 'b', [1, 2, 3, 4]);
      await send(api, p, 'c', [1]);
      await pipeline.idle(2);
      const post = (body: Record<string, unknown>) =>
        request(small.server)
          .post(`/projects/${p.projectId}/rules/backtest`)
          .set(p.headers)
          .send({ rule: HOVER, from: at(0), to: at(60), ...body });
      const devices = await post({}).expect(422);
      expect(devices.body.message).toContain('BACKTEST_MAX_DEVICES');
      const a = await deviceIdOf(db, p.projectId, 'a');
      const b = await deviceIdOf(db, p.projectId, 'b');
      const readings = await post({ device_ids: [a, b] }).expect(422);
      expect(readings.body.message).toContain('BACKTEST_MAX_READINGS');
      expect(readings.body.details).toEqual([
        { field: 'from', message: 'at most 7 readings per backtest (BACKTEST_MAX_READINGS)' },
      ]);
      // Exactly at the budget is fine.
      const c = await deviceIdOf(db, p.projectId, 'c');
      expect((await post({ device_ids: [a, c], to: at(60) }).expect(200)).body.readings).toBe(5);
      expect((await post({ device_ids: [a, b], to: at(3) }).expect(200)).body.readings).toBe(6);
    });
  });

  /**
   * The promise: the backtest says what live evaluation did. Random rules (hysteresis and
   * cooldown included) over random streams, sent in random batches through the api and the
   * worker; the alerts the worker opened and resolved are exactly the backtest's
   * transitions, windows included.
   */
  it('agrees with live evaluation on the same readings (random streams, random splits)', async () => {
    const ruleArb = fc.integer({ min: 1, max: 6 }).chain((windowN) =>
      fc.record({
        operator: fc.constantFrom('>', '>=', '<', '<='),
        windowN: fc.constant(windowN),
        requiredK: fc.integer({ min: 1, max: windowN }),
        cooldown: fc.constantFrom(0, 0, 1, 3),
        clearBy: fc.constantFrom(0, 1, 2, 2),
        clearK: fc.option(fc.integer({ min: 1, max: windowN }), { nil: null }),
      }),
    );
    const streamArb = fc.array(fc.option(fc.integer({ min: 0, max: 6 }), { freq: 10, nil: null }), {
      minLength: 20,
      maxLength: 80,
    });
    const cutsArb = fc.array(fc.integer({ min: 1, max: 79 }), { maxLength: 6 });
    let runs = 0;
    let eventful = 0;
    await fc.assert(
      fc.asyncProperty(ruleArb, streamArb, cutsArb, async (r, values, cuts) => {
        runs++;
        const p = await api.tenants.newProject();
        const up = r.operator.startsWith('>');
        const body = {
          name: 'prop',
          metric: 'temperature',
          operator: r.operator,
          threshold: 3,
          window_n: r.windowN,
          required_k: r.requiredK,
          cooldown_seconds: r.cooldown,
          clear_threshold: up ? 3 - r.clearBy : 3 + r.clearBy,
          clear_k: r.clearK,
        };
        const saved = await rule(api, p, body).expect(201);
        const bounds = [
          0,
          ...[...new Set(cuts)].filter((c) => c < values.length).sort((a, b) => a - b),
          values.length,
        ];
        for (let i = 0; i + 1 < bounds.length; i++)
          await send(api, p, 'dev', values.slice(bounds[i], bounds[i + 1]), { start: bounds[i] });
        await pipeline.idle(2);
        const live = (
          await db.query(
            `SELECT triggered_at, resolved_at, details FROM alerts
              WHERE project_id = $1 ORDER BY triggered_at`,
            [p.projectId],
          )
        ).map(
          (a: { triggered_at: Date; resolved_at: Date | null; details: { window: unknown } }) => ({
            open: a.triggered_at.toISOString(),
            resolve: a.resolved_at?.toISOString() ?? null,
            window: a.details.window,
          }),
        );
        const res = await backtest(p, { rule_id: saved.body.id, transitions_limit: 1000 }).expect(
          200,
        );
        const device = res.body.devices[0];
        const expected: typeof live = [];
        for (const t of device.transitions as Array<{
          kind: string;
          at: string;
          window?: unknown;
        }>) {
          if (t.kind === 'open') expected.push({ open: t.at, resolve: null, window: t.window });
          else expected[expected.length - 1].resolve = t.at;
        }
        if (device.transitions.length > 0) eventful++;
        expect(live).toEqual(expected);
        expect(device.readings).toBe(values.filter((v) => v !== null).length);
      }),
      { numRuns: Number(readEnv().BACKTEST_PROPERTY_RUNS ?? 12) },
    );
    // Not vacuous: most runs had alerts to compare.
    expect(eventful).toBeGreaterThanOrEqual(runs / 2);
  });
});
