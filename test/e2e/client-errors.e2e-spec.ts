import { encodeCursor } from '@app/common';
import { adminHeaders, testRunEnv, TestProject, uniqueName } from '@app/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { rule } from '../support/fixtures';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * Requests carrying values PostgreSQL refuses, or asking for more than a statement may
 * take. The contract says a client's input never gets a 500: each is a 4xx naming the
 * problem, or a 503 for the timeout.
 */
describe('client errors never answer 500 (e2e)', () => {
  let api: RunningApi;
  let db: DataSource;
  let p: TestProject;
  let deviceId: string;
  let deliveryId: string;
  let ruleId: string;

  beforeAll(async () => {
    api = await startApi();
    db = api.app.get(DataSource);
    p = await api.tenants.newProject();
    deviceId = (
      await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'sensor-1' })
        .expect(201)
    ).body.id;
    ruleId = (await newRule({}).expect(201)).body.id;
    const webhookId = (
      await http()
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: 'https://example.com/hook' })
        .expect(201)
    ).body.id;
    // A delivery without an alert behind it: only its attempts list is read here.
    [{ id: deliveryId }] = await db.query(
      `INSERT INTO webhook_deliveries (project_id, webhook_id, event_id, event_type, status)
       VALUES ($1, $2, gen_random_uuid(), 'alert.created', 'failed') RETURNING id`,
      [p.projectId, webhookId],
    );
  });
  afterAll(() => api.close());

  const http = () => request(api.server);
  const newRule = (body: Record<string, unknown>) =>
    rule(api, p, { name: uniqueName('rule'), metric: 'temperature', threshold: 80, ...body });
  /** A 422 whose details name `field`; status and body in one assertion, so a failure shows both. */
  const expectRefused = (res: request.Response, field: string) =>
    expect({ status: res.status, body: res.body }).toMatchObject({
      status: 422,
      body: {
        statusCode: 422,
        error: 'Unprocessable Entity',
        details: expect.arrayContaining([expect.objectContaining({ field })]),
      },
    });
  const expectOk = (res: request.Response) =>
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 200 });

  describe('forged list cursors', () => {
    // Date.parse accepts both; PostgreSQL refuses them (22008).
    const impossible = ['2024-02-31T00:00:00.000Z', '0000-01-01T00:00:00.000Z'];
    const uuid = '00000000-0000-4000-8000-000000000000';

    // Every row has all three values: jest passes `done` to a callback with more parameters.
    const timeIdLists: Array<[string, () => string, boolean]> = [
      ['devices', () => `/projects/${p.projectId}/devices`, false],
      ['rules', () => `/projects/${p.projectId}/rules`, false],
      ['project alerts', () => `/projects/${p.projectId}/alerts`, false],
      ['device alerts', () => `/devices/${deviceId}/alerts`, false],
      ['webhooks', () => `/projects/${p.projectId}/webhooks`, false],
      ['webhook deliveries', () => `/projects/${p.projectId}/webhook-deliveries`, false],
      ['rejected readings', () => `/projects/${p.projectId}/rejected-readings`, false],
      ['orgs', () => `/orgs`, true],
      ['projects', () => `/orgs/${p.orgId}/projects`, true],
      ['api keys', () => `/projects/${p.projectId}/api-keys`, true],
    ];
    const timeLists: Array<[string, () => string]> = [
      ['telemetry', () => `/telemetry/devices/${deviceId}/telemetry`],
      ['telemetry since', () => `/telemetry/devices/${deviceId}/telemetry/since?since_ts=0`],
    ];

    describe.each(impossible)('with ts %s', (ts) => {
      it.each(timeIdLists)('%s: 422 naming cursor', async (_name, path, admin) => {
        const res = await http()
          .get(path())
          .query({ cursor: encodeCursor([ts, uuid]) })
          .set(admin ? adminHeaders : p.headers);
        expectRefused(res, 'cursor');
      });

      it.each(timeLists)('%s: 422 naming cursor', async (_name, path) => {
        const res = await http()
          .get(path())
          .query({ cursor: encodeCursor([ts]) })
          .set(p.headers);
        expectRefused(res, 'cursor');
      });
    });

    // The attempts cursor is an attempt number, an integer column: PostgreSQL refuses a
    // larger one (22003).
    it.each([2 ** 31, Number.MAX_SAFE_INTEGER])(
      'delivery attempts: attempt number %d is a 422, not a 500',
      async (n) => {
        const res = await http()
          .get(`/webhook-deliveries/${deliveryId}/attempts`)
          .query({ cursor: encodeCursor([n]) })
          .set(p.headers);
        expect({ status: res.status, body: res.body }).toMatchObject({
          status: 422,
          body: { statusCode: 422 },
        });
      },
    );

    it('a cursor we issued still pages', async () => {
      await newRule({}).expect(201);
      const first = await http()
        .get(`/projects/${p.projectId}/rules`)
        .query({ limit: 1 })
        .set(p.headers)
        .expect(200);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      await http()
        .get(`/projects/${p.projectId}/rules`)
        .query({ limit: 1, cursor: first.body.next_cursor })
        .set(p.headers)
        .expect(200);
    });
  });

  describe('time parameters with offsets PostgreSQL refuses (±16:00 and beyond)', () => {
    // 2024-12-31T10:00:00Z written with offsets of ±20 hours.
    const plus20 = '2025-01-01T06:00:00+20:00';
    const minus20 = '2024-12-30T14:00:00-20:00';
    let alertId: string;

    beforeAll(async () => {
      [{ id: alertId }] = await db.query(
        `INSERT INTO alerts (project_id, rule_id, device_id, status, triggered_at, details)
         VALUES ($1, $2, $3, 'resolved', '2024-12-31T10:00:00Z', '{}') RETURNING id`,
        [p.projectId, ruleId, deviceId],
      );
    });

    const ids = (res: request.Response) =>
      (res.body.items as Array<{ id: string }>).map((a) => a.id);

    it.each([
      ['project alerts', () => `/projects/${p.projectId}/alerts`],
      ['device alerts', () => `/devices/${deviceId}/alerts`],
    ])('%s: from/to are read as the instant they name', async (_name, path) => {
      const list = (query: Record<string, string>) =>
        http().get(path()).query(query).set(p.headers);
      const from = await list({ from: plus20 });
      expectOk(from);
      expect(ids(from)).toEqual([alertId]);
      const fromMinus = await list({ from: minus20 });
      expectOk(fromMinus);
      expect(ids(fromMinus)).toEqual([alertId]);
      // `to` is exclusive: the same instant leaves the alert out.
      const to = await list({ to: plus20 });
      expectOk(to);
      expect(ids(to)).toEqual([]);
    });

    it.each([
      ['project alerts', () => `/projects/${p.projectId}/alerts`],
      ['telemetry', () => `/telemetry/devices/${deviceId}/telemetry`],
    ])('%s: an impossible from is still a 422 naming it', async (_name, path) => {
      const res = await http().get(path()).query({ from: '2025-02-30T00:00:00Z' }).set(p.headers);
      expectRefused(res, 'from');
    });

    it('telemetry list and aggregate take the same offsets', async () => {
      expectOk(
        await http()
          .get(`/telemetry/devices/${deviceId}/telemetry`)
          .query({ from: minus20, to: plus20.replace('06:', '07:') })
          .set(p.headers),
      );
      expectOk(
        await http()
          .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
          .query({
            metric: 'temperature',
            from: minus20,
            to: plus20.replace('06:', '07:'),
            bucket_seconds: 60,
            agg: 'avg',
          })
          .set(p.headers),
      );
    });
  });

  describe('text PostgreSQL cannot store, or that is no name', () => {
    it.each([
      ['name', 'a\u0000b'],
      ['name', 'bell\u0007'],
      ['metric', 'temp\u0000'],
      ['metric', 'temp\u0007'],
      ['metric', 'temp\ud800'],
    ])('POST /rules: %s %j is a 422 naming it', async (field, value) => {
      expectRefused(await newRule({ [field]: value }), field);
    });

    it.each([
      ['name', 'a\u0000b'],
      ['metric', 'temp\u0000'],
      ['metric', '\udc00'],
    ])('PATCH /rules: %s %j is a 422 naming it', async (field, value) => {
      const res = await http()
        .patch(`/rules/${ruleId}`)
        .set(p.headers)
        .send({ [field]: value });
      expectRefused(res, field);
    });

    it.each(['%00', 'temp%00', '%07', 'a'.repeat(65)])(
      'aggregate metric=%s is a 422 naming it',
      async (metric) => {
        const res = await http()
          .get(
            `/telemetry/devices/${deviceId}/telemetry/aggregate?metric=${metric}` +
              '&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z&bucket_seconds=3600&agg=avg',
          )
          .set(p.headers);
        expectRefused(res, 'metric');
      },
    );

    it('names with spaces and metrics with any printable text still work', async () => {
      const created = await newRule({ name: '  Température élevée  ', metric: 'temp °C/🌡' }).expect(
        201,
      );
      expect(created.body).toMatchObject({ name: 'Température élevée', metric: 'temp °C/🌡' });
      expectOk(
        await http()
          .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
          .query({
            metric: 'temp °C/🌡',
            from: '2025-01-01T00:00:00Z',
            to: '2025-01-02T00:00:00Z',
            bucket_seconds: 3600,
            agg: 'max',
          })
          .set(p.headers),
      );
    });
  });

  describe('a statement cancelled by API_STATEMENT_TIMEOUT_MS', () => {
    let slow: RunningApi;
    beforeAll(async () => {
      slow = await startApi({ API_STATEMENT_TIMEOUT_MS: '100' });
    });
    afterAll(() => slow.close());

    it('answers 503 with Retry-After and asks for a narrower query', async () => {
      // A lock wait counts against statement_timeout: holding the table makes the aggregate
      // time out every time, without millions of rows. Held for one request only, since
      // the run's other files share this database.
      const runner = db.createQueryRunner();
      await runner.startTransaction();
      let res: request.Response;
      try {
        await runner.query('LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE');
        res = await request(slow.app.getHttpServer())
          .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
          .query({
            metric: 'temperature',
            from: '2025-01-01T00:00:00Z',
            to: '2025-01-02T00:00:00Z',
            bucket_seconds: 3600,
            agg: 'avg',
          })
          .set(p.headers);
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
      expect({ status: res.status, body: res.body }).toMatchObject({
        status: 503,
        body: {
          statusCode: 503,
          error: 'Service Unavailable',
          message: expect.stringMatching(/took too long.*narrow/),
        },
      });
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
    });
  });

  // Each of these was a 500 or a status docs/openapi.json does not list, until the OpenAPI
  // fuzzer (test/fuzz) sent it.
  describe('found by the OpenAPI fuzzer', () => {
    it('a body that claims gzip but is not: 400 naming the encoding (was a 500)', async () => {
      const res = await http()
        .patch(`/rules/${ruleId}`)
        .set(p.headers)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send('{"enabled":true}');
      expect({ status: res.status, message: res.body.message }).toEqual({
        status: 400,
        message:
          'the request body could not be decompressed: it does not match its Content-Encoding',
      });
    });

    it('a body sent with a GET or a DELETE is not read (was a 400 no GET lists)', async () => {
      const res = await http()
        .get(`/devices/${deviceId}`)
        .set(p.headers)
        .set('Content-Type', 'application/json')
        .send('{');
      expect(res.status).toBe(200);
    });

    it('a path segment that is not valid %-encoding names nothing: 404 (was a 400)', async () => {
      for (const path of ['/devices/%', '/rules/%zz', '/alerts/%E0%A4%A']) {
        const res = await http().get(path).set(p.headers);
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
      }
    });
  });

  describe('Redis unreachable during circuit-status', () => {
    it('answers 503 with Retry-After, not 500', async () => {
      const run = testRunEnv();
      const target = new URL(run.redisUrl);
      const proxy = await TcpProxy.start({
        host: target.hostname,
        port: Number(target.port || 6379),
      });
      const cut = await startApi({ REDIS_URL: proxy.url(run.redisUrl) });
      try {
        const q = await cut.tenants.newProject();
        const hook = await request(cut.server)
          .post(`/projects/${q.projectId}/webhooks`)
          .set(q.headers)
          .send({ url: 'https://example.com/hook' })
          .expect(201);
        proxy.setMode('reset');
        const res = await request(cut.server)
          .get(`/webhooks/${hook.body.id}/circuit-status`)
          .set(q.headers);
        expect(res.status).toBe(503);
        expect(res.headers['retry-after']).toBeDefined();
        expect(res.body.message).toMatch(/circuit state is unavailable/);
      } finally {
        proxy.setMode('pass');
        await cut.close();
        await proxy.close();
      }
    }, 30000);
  });
});
