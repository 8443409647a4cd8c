import { SilencesRepository } from '@app/alerts';
import fc from 'fast-check';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { deviceIdOf, rule, T0 } from '../support/fixtures';

const HOUR = 3600_000;
const TAGS = ['a', 'b', 'c'];

/**
 * The fan-out asks which silence mutes each of an evaluation's events in one query
 * (`SilencesRepository.mutingSilences`); a silence's own page, the release and the spec
 * are written against `covering`, one alert at a time. Random silences (every matcher,
 * windows around the events' times) over every alert of two rules and three devices with
 * tags: the two must name the same silence for every event.
 */
describe('silence matching for a batch of events (integration)', () => {
  jest.setTimeout(120000);
  let api: RunningApi;
  let db: DataSource;
  let silences: SilencesRepository;

  beforeAll(async () => {
    api = await startApi();
    db = api.app.get(DataSource);
    silences = api.app.get(SilencesRepository);
  });
  afterAll(() => api?.close());

  it('names the silence covering() names, event by event', async () => {
    const p = await api.tenants.newProject();
    const rules: string[] = [];
    for (const name of ['one', 'two'])
      rules.push((await rule(api, p, { name }).expect(201)).body.id as string);
    const devices: string[] = [];
    const tagsOf = [['a'], ['b', 'c'], []];
    for (let i = 0; i < 3; i++) {
      await request(api.server)
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: `d${i}`, tags: tagsOf[i] })
        .expect(201);
      devices.push((await deviceIdOf(db, p.projectId, `d${i}`))!);
    }
    const alerts: Array<{ id: string; ruleId: string; deviceId: string }> = [];
    for (const ruleId of rules)
      for (const deviceId of devices) {
        const [row] = await db.query(
          `INSERT INTO alerts (project_id, rule_id, device_id, status, triggered_at, details)
           VALUES ($1, $2, $3, 'open', now(), '{}') RETURNING id`,
          [p.projectId, ruleId, deviceId],
        );
        alerts.push({ id: row.id, ruleId, deviceId });
      }

    const silence = fc
      .record({
        rule: fc.option(fc.constantFrom(...rules)),
        device: fc.option(fc.constantFrom(...devices)),
        tag: fc.option(fc.constantFrom(...TAGS)),
        startsH: fc.integer({ min: -3, max: 2 }),
        lengthH: fc.integer({ min: 1, max: 4 }),
      })
      // A silence has at least one matcher (silences_matcher_check).
      .filter((s) => s.rule !== null || s.device !== null || s.tag !== null);
    const event = fc.record({
      alert: fc.integer({ min: 0, max: alerts.length - 1 }),
      atH: fc.integer({ min: -3, max: 3 }),
    });

    await fc.assert(
      fc.asyncProperty(
        fc.array(silence, { maxLength: 5 }),
        fc.array(event, { minLength: 1, maxLength: 6 }),
        async (made, events) => {
          await db.transaction(async (em) => {
            await em.query(`DELETE FROM silences WHERE project_id = $1`, [p.projectId]);
            for (const [i, s] of made.entries()) {
              const startsAt = T0 + s.startsH * HOUR;
              await em.query(
                `INSERT INTO silences (project_id, rule_id, device_id, tag, starts_at, ends_at, comment, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, 'c', 'test')`,
                [
                  p.projectId,
                  s.rule,
                  s.device,
                  s.tag,
                  new Date(startsAt),
                  // No two end together: "the one that ends last" is then one silence.
                  new Date(startsAt + s.lengthH * HOUR + i),
                ],
              );
            }
            const asked = events.map((e) => ({
              alertId: alerts[e.alert].id,
              at: new Date(T0 + e.atH * HOUR),
            }));
            const batch = await silences.mutingSilences(em, asked);
            const oneByOne = [];
            for (const e of events) {
              const a = alerts[e.alert];
              oneByOne.push(
                await silences.covering(
                  em,
                  { projectId: p.projectId, ruleId: a.ruleId, deviceId: a.deviceId },
                  new Date(T0 + e.atH * HOUR),
                ),
              );
            }
            expect(batch).toEqual(oneByOne);
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
