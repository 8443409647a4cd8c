import { adminHeaders, TestProject, uniqueName } from '@app/testing';
import { Queue } from 'bullmq';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { at, deviceIdOf, readings, rule, T0 } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { drained } from '../support/worker';

/**
 * "The first hour": what a new user meets while finding their way around the api, where
 * every mistake should say how to fix it. One describe per part of the issue.
 */
describe('the first hour with the api (e2e)', () => {
  jest.setTimeout(30000);

  let stack: Stack;
  let api: RunningApi;
  let db: DataSource;
  let queue: Queue;
  let p: TestProject;
  let port: number;

  beforeAll(async () => {
    stack = await startStack();
    ({ api, db } = stack);
    queue = stack.pipeline.ingest;
    await api.app.listen(0, '127.0.0.1');
    port = (api.app.getHttpServer().address() as AddressInfo).port;
    p = await api.tenants.newProject();
  });
  afterAll(() => stack.close());

  const http = () => request(api.server);
  const deviceOf = (projectId: string, externalId: string) =>
    deviceIdOf(db, projectId, externalId) as Promise<string>;
  const newDevice = async (q: TestProject, externalId: string): Promise<string> =>
    (
      await http()
        .post(`/projects/${q.projectId}/devices`)
        .set(q.headers)
        .send({ external_id: externalId })
        .expect(201)
    ).body.id;
  /** Status and body in one value, so a failing assertion shows both. */
  const answer = (res: request.Response) => ({ status: res.status, body: res.body });

  /**
   * A request with exactly these headers (supertest adds a Content-Type of its own to a
   * string body): `undefined` values are left out.
   */
  const raw = (
    method: string,
    path: string,
    headers: Record<string, string | undefined>,
    body: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          headers: Object.fromEntries(
            Object.entries({ ...headers, 'Content-Length': String(Buffer.byteLength(body)) })
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => [k, v as string]),
          ),
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  describe('GET / says what this is and where to go', () => {
    const { description, version } = JSON.parse(
      readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'),
    ) as { description: string; version: string };
    const links = {
      docs: '/docs',
      openapi: '/docs-json',
      health_live: '/health/live',
      health_ready: '/health/ready',
      metrics: '/metrics',
      console: '/console/',
    };

    it.each([
      ['application/json', 'application/json'],
      ['*/* (curl)', '*/*'],
      ['no Accept at all', undefined],
      ['text/plain', 'text/plain'],
    ])('answers JSON to a client asking for %s, without credentials', async (_label, accept) => {
      const req = http().get('/');
      const res = await (accept === undefined ? req.unset('Accept') : req.set('Accept', accept));
      expect(answer(res)).toEqual({
        status: 200,
        body: { name: 'telemetry-platform', description, version, links },
      });
      expect(res.headers['content-type']).toMatch(/^application\/json/);
    });

    it('answers a browser with a small HTML page carrying the same links', async () => {
      const res = await http()
        .get('/')
        .set('Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      for (const href of Object.values(links)) expect(res.text).toContain(`href="${href}"`);
      expect(res.text).toContain(version);
    });

    it('is in the OpenAPI document', async () => {
      const doc = (await http().get('/docs-json').expect(200)).body;
      expect(doc.paths['/']?.get).toMatchObject({
        summary: expect.any(String),
        responses: { 200: expect.anything() },
      });
    });
  });

  describe('a body that is not sent as JSON names Content-Type: application/json', () => {
    const batch = JSON.stringify({
      device_external_id: 'form-sent',
      events: readings(1, () => ({ t: 1 })),
    });
    const refused = {
      status: 415,
      body: {
        statusCode: 415,
        error: 'Unsupported Media Type',
        message: expect.stringContaining('Content-Type: application/json'),
      },
    };

    it.each([
      ['application/x-www-form-urlencoded (curl -d)', 'application/x-www-form-urlencoded'],
      ['text/plain', 'text/plain'],
      ['no Content-Type at all', undefined],
    ])('POST /telemetry with %s: 415, nothing queued', async (_label, type) => {
      const res = await raw('POST', '/telemetry', { ...p.headers, 'Content-Type': type }, batch);
      expect(res).toMatchObject(refused);
      expect(await deviceIdOf(db, p.projectId, 'form-sent')).toBeUndefined();
    });

    it('names the curl flag when the body came as a form', async () => {
      const res = await raw(
        'POST',
        '/telemetry',
        { ...p.headers, 'Content-Type': 'application/x-www-form-urlencoded' },
        batch,
      );
      expect(res.body.message).toMatch(/curl/);
    });

    it.each([
      ['POST /orgs', 'POST', () => '/orgs', adminHeaders],
      ['POST /projects/{id}/rules', 'POST', () => `/projects/${p.projectId}/rules`, undefined],
      ['POST /projects/{id}/devices', 'POST', () => `/projects/${p.projectId}/devices`, undefined],
    ])('%s with text/plain: 415 too', async (_label, method, path, headers) => {
      const res = await raw(
        method,
        path(),
        { ...(headers ?? p.headers), 'Content-Type': 'text/plain' },
        '{"name": "x"}',
      );
      expect(res).toMatchObject(refused);
    });

    it('still takes application/json with a charset', async () => {
      const res = await raw(
        'POST',
        '/telemetry',
        { ...p.headers, 'Content-Type': 'application/json; charset=utf-8' },
        batch,
      );
      expect(res.status).toBe(202);
    });

    it('keeps the other statuses: no body at all, a body too large, an unknown route, a route without a body', async () => {
      // No body: the fields it lacks are named, as before.
      const empty = await http().post('/orgs').set(adminHeaders);
      expect(answer(empty)).toMatchObject({
        status: 422,
        body: { details: [{ field: 'name', message: 'name is required' }] },
      });
      // Over the limit: 413, whatever the type.
      await http()
        .post('/orgs')
        .set(adminHeaders)
        .type('form')
        .send(`name=${'x'.repeat(200 * 1024)}`)
        .expect(413);
      // Unknown route: 404.
      const unknown = await raw('POST', '/no/such/route', { 'Content-Type': 'text/plain' }, 'x');
      expect(unknown.status).toBe(404);
      // A route that reads no body ignores one, as before.
      const device = await newDevice(p, uniqueName('bodiless'));
      const alerts = await raw(
        'GET',
        `/devices/${device}/alerts`,
        { ...p.headers, 'Content-Type': 'text/plain' },
        'x',
      );
      expect(alerts.status).toBe(200);
    });

    it('POST /telemetry over 8 MiB as a form is still a 413', async () => {
      const huge = `x=${'y'.repeat(9 * 1024 * 1024)}`;
      const res = await raw(
        'POST',
        '/telemetry',
        { ...p.headers, 'Content-Type': 'application/x-www-form-urlencoded' },
        huge,
      );
      expect(res.status).toBe(413);
    });
  });

  describe('validation: one message per problem, a missing field is "required"', () => {
    const aggregate = (deviceId: string, query: Record<string, string | number>) =>
      http().get(`/telemetry/devices/${deviceId}/telemetry/aggregate`).query(query).set(p.headers);
    let deviceId: string;
    beforeAll(async () => {
      deviceId = await newDevice(p, uniqueName('validation'));
    });

    it('a missing bucket_seconds is "bucket_seconds is required", nothing about its range', async () => {
      const res = await aggregate(deviceId, {
        metric: 't',
        from: at(0),
        to: at(3600),
        agg: 'avg',
      });
      expect(answer(res)).toMatchObject({
        status: 422,
        body: {
          message: 'validation failed: bucket_seconds: bucket_seconds is required',
          details: [{ field: 'bucket_seconds', message: 'bucket_seconds is required' }],
        },
      });
    });

    it('a bucket_seconds that is no number gets one message, the type', async () => {
      const res = await aggregate(deviceId, {
        metric: 't',
        from: at(0),
        to: at(3600),
        agg: 'avg',
        bucket_seconds: 'abc',
      });
      expect(answer(res)).toMatchObject({
        status: 422,
        body: {
          details: [
            {
              field: 'bucket_seconds',
              message: 'bucket_seconds must be a whole number of seconds',
            },
          ],
        },
      });
    });

    it('a missing since_ts is one "since_ts is required"', async () => {
      const res = await http().get(`/telemetry/devices/${deviceId}/telemetry/since`).set(p.headers);
      expect(answer(res)).toMatchObject({
        status: 422,
        body: { details: [{ field: 'since_ts', message: 'since_ts is required' }] },
      });
    });

    it('an empty rule names each missing field once', async () => {
      const res = await http().post(`/projects/${p.projectId}/rules`).set(p.headers).send({});
      expect(res.status).toBe(422);
      expect(res.body.details).toEqual(
        ['name', 'metric', 'operator', 'threshold', 'window_n', 'required_k'].map((field) => ({
          field,
          message: `${field} is required`,
        })),
      );
    });

    it('a value of the wrong type is named by its type; an out-of-range one by its range', async () => {
      const res = await rule(api, p, { name: uniqueName('r'), window_n: 'five', required_k: 0 });
      expect(res.status).toBe(422);
      expect(res.body.details).toEqual([
        { field: 'window_n', message: 'window_n must be an integer number' },
        { field: 'required_k', message: 'required_k must not be less than 1' },
      ]);
    });
  });

  describe('time parameters take ISO 8601 and unix seconds alike', () => {
    const t0s = T0 / 1000;
    let deviceId: string;
    beforeAll(async () => {
      await http()
        .post('/telemetry')
        .set(p.headers)
        .send({
          device_external_id: 'clock',
          events: readings(10, (k) => ({ t: k })),
        })
        .expect(202);
      await drained(queue);
      deviceId = await deviceOf(p.projectId, 'clock');
    });

    const tsOf = (res: request.Response) =>
      (res.body.items as Array<{ ts: string }>).map((r) => r.ts);

    it('GET …/telemetry?from&to: unix seconds select what the ISO times select', async () => {
      const iso = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry`)
        .query({ from: at(2), to: at(5) })
        .set(p.headers)
        .expect(200);
      const unix = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry`)
        .query({ from: t0s + 2, to: String(t0s + 5) })
        .set(p.headers);
      expect(answer(unix)).toMatchObject({ status: 200 });
      expect(tsOf(unix)).toEqual(tsOf(iso));
      expect(tsOf(unix)).toEqual([at(4), at(3), at(2)]);
      // Fractions of a second too.
      const fraction = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry`)
        .query({ from: `${t0s + 1}.5`, to: t0s + 3 })
        .set(p.headers)
        .expect(200);
      expect(tsOf(fraction)).toEqual([at(2)]);
    });

    it('GET …/telemetry/since: since_ts takes an ISO time as well as unix seconds (still)', async () => {
      const unix = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry/since`)
        .query({ since_ts: t0s + 6 })
        .set(p.headers)
        .expect(200);
      expect(tsOf(unix)).toEqual([at(7), at(8), at(9)]);
      const iso = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry/since`)
        .query({ since_ts: at(6) })
        .set(p.headers);
      expect(answer(iso)).toMatchObject({ status: 200 });
      expect(tsOf(iso)).toEqual(tsOf(unix));
      const offset = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry/since`)
        .query({ since_ts: '2025-01-01T02:00:06+02:00' })
        .set(p.headers)
        .expect(200);
      expect(tsOf(offset)).toEqual(tsOf(unix));
      // Fractions of a second, as before.
      const fraction = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry/since`)
        .query({ since_ts: `${t0s + 7}.5` })
        .set(p.headers)
        .expect(200);
      expect(tsOf(fraction)).toEqual([at(8), at(9)]);
    });

    it('GET …/telemetry/aggregate: from and to in unix seconds', async () => {
      const res = await http()
        .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
        .query({ metric: 't', from: t0s, to: t0s + 10, bucket_seconds: 60, agg: 'count' })
        .set(p.headers);
      expect(answer(res)).toMatchObject({
        status: 200,
        body: { items: [{ bucket_start: at(0), value: 10, count: 10 }] },
      });
    });

    it('GET …/alerts: from and to in unix seconds', async () => {
      for (const path of [`/projects/${p.projectId}/alerts`, `/devices/${deviceId}/alerts`]) {
        const res = await http()
          .get(path)
          .query({ from: t0s, to: t0s + 10 })
          .set(p.headers);
        expect(answer(res)).toMatchObject({ status: 200, body: { items: [] } });
      }
    });

    it.each([
      ['from', () => `/telemetry/devices/${deviceId}/telemetry`, 'yesterday'],
      ['to', () => `/telemetry/devices/${deviceId}/telemetry`, '2025-02-30T00:00:00Z'],
      ['since_ts', () => `/telemetry/devices/${deviceId}/telemetry/since`, 'abc'],
      ['since_ts', () => `/telemetry/devices/${deviceId}/telemetry/since`, '-5'],
      ['from', () => `/projects/${p.projectId}/alerts`, '1e9'],
      ['to', () => `/devices/${deviceId}/alerts`, '2025-01-01'],
    ])('an invalid %s gets one message naming both forms', async (field, path, value) => {
      const res = await http()
        .get(path())
        .query({ [field]: value })
        .set(p.headers);
      expect(answer(res)).toMatchObject({
        status: 422,
        body: {
          details: [
            {
              field,
              message: expect.stringMatching(/ISO 8601.*unix seconds/),
            },
          ],
        },
      });
    });
  });

  describe('rule names are unique in a project', () => {
    it('creating a second rule of that name is a 409, in any case; another project may use it', async () => {
      const q = await api.tenants.newProject();
      await rule(api, q, { name: 'High temperature' }).expect(201);
      const again = await rule(api, q, { name: 'High temperature' });
      expect(answer(again)).toMatchObject({
        status: 409,
        body: { statusCode: 409, message: expect.stringContaining('High temperature') },
      });
      await rule(api, q, { name: 'HIGH TEMPERATURE' }).expect(409);
      const other = await api.tenants.newProject();
      await rule(api, other, { name: 'High temperature' }).expect(201);
    });

    it('renaming to a name in use is a 409; keeping its own name is fine', async () => {
      const q = await api.tenants.newProject();
      await rule(api, q, { name: 'first' }).expect(201);
      const second = (await rule(api, q, { name: 'second' }).expect(201)).body.id;
      const res = await http().patch(`/rules/${second}`).set(q.headers).send({ name: 'first' });
      expect(answer(res)).toMatchObject({ status: 409, body: { statusCode: 409 } });
      await http().patch(`/rules/${second}`).set(q.headers).send({ name: 'second' }).expect(200);
      await http().patch(`/rules/${second}`).set(q.headers).send({ name: 'Second' }).expect(200);
    });
  });

  describe('devices by external id', () => {
    let q: TestProject;
    let ids: Record<string, string>;
    beforeAll(async () => {
      q = await api.tenants.newProject();
      ids = {};
      for (const ext of ['sensor-a', 'sensor-b', 'hall/1']) ids[ext] = await newDevice(q, ext);
    });

    it('GET /projects/{id}/devices?external_id= lists only that device (exact match)', async () => {
      const res = await http()
        .get(`/projects/${q.projectId}/devices`)
        .query({ external_id: 'sensor-a' })
        .set(q.headers);
      expect(answer(res)).toMatchObject({ status: 200 });
      expect(res.body.items.map((d: { id: string }) => d.id)).toEqual([ids['sensor-a']]);
      const none = await http()
        .get(`/projects/${q.projectId}/devices`)
        .query({ external_id: 'sensor' })
        .set(q.headers)
        .expect(200);
      expect(none.body).toEqual({ items: [], next_cursor: null });
    });

    it('GET /projects/{id}/devices/by-external-id/{external_id}: the device, or 404', async () => {
      const res = await http()
        .get(`/projects/${q.projectId}/devices/by-external-id/sensor-b`)
        .set(q.headers);
      expect(answer(res)).toMatchObject({
        status: 200,
        body: { id: ids['sensor-b'], external_id: 'sensor-b', project_id: q.projectId },
      });
      const slashed = await http()
        .get(`/projects/${q.projectId}/devices/by-external-id/${encodeURIComponent('hall/1')}`)
        .set(q.headers)
        .expect(200);
      expect(slashed.body.id).toBe(ids['hall/1']);
      const missing = await http()
        .get(`/projects/${q.projectId}/devices/by-external-id/nope`)
        .set(q.headers);
      expect(answer(missing)).toMatchObject({
        status: 404,
        body: { statusCode: 404, message: expect.stringContaining('nope') },
      });
      // Another project's device is not found either, and text no id can hold is no 500.
      const other = await api.tenants.newProject();
      await http()
        .get(`/projects/${other.projectId}/devices/by-external-id/sensor-b`)
        .set(other.headers)
        .expect(404);
      await http()
        .get(`/projects/${q.projectId}/devices/by-external-id/a%00b`)
        .set(q.headers)
        .expect(404);
    });
  });

  describe('GET /devices/{id}/metrics: what the device sends', () => {
    it('lists each metric with its JSON types, last value and whether rules can use it', async () => {
      const q = await api.tenants.newProject();
      const data = (k: number): Record<string, unknown> => ({
        temperature: k === 2 ? '21.5' : 20 + k,
        door: k % 2 ? 'open' : 'closed',
        alarm: k === 0 ? false : null,
        ...(k === 0 && { first_only: 1 }),
      });
      await http()
        .post('/telemetry')
        .set(q.headers)
        .send({ device_external_id: 'catalog', events: readings(4, data) })
        .expect(202);
      await drained(queue);
      const deviceId = await deviceOf(q.projectId, 'catalog');
      const res = await http().get(`/devices/${deviceId}/metrics`).set(q.headers);
      expect(answer(res)).toEqual({
        status: 200,
        body: {
          device_id: deviceId,
          readings_examined: 4,
          readings_limit: 1000,
          truncated: false,
          items: [
            {
              metric: 'alarm',
              types: ['boolean', 'null'],
              readings: 4,
              numeric_readings: 0,
              last_value: null,
              last_type: 'null',
              last_ts: at(3),
              usable_by_rules: false,
            },
            {
              metric: 'door',
              types: ['string'],
              readings: 4,
              numeric_readings: 0,
              last_value: 'open',
              last_type: 'string',
              last_ts: at(3),
              usable_by_rules: false,
            },
            {
              metric: 'first_only',
              types: ['number'],
              readings: 1,
              numeric_readings: 1,
              last_value: 1,
              last_type: 'number',
              last_ts: at(0),
              usable_by_rules: true,
            },
            {
              metric: 'temperature',
              types: ['number', 'string'],
              readings: 4,
              numeric_readings: 3,
              last_value: 23,
              last_type: 'number',
              last_ts: at(3),
              usable_by_rules: true,
            },
          ],
        },
      });
    });

    it('reads only the newest 1,000 readings', async () => {
      const q = await api.tenants.newProject();
      await http()
        .post('/telemetry')
        .set(q.headers)
        .send({
          device_external_id: 'long',
          events: readings(1001, (k) => (k === 0 ? { ancient: 1 } : { t: k })),
        })
        .expect(202);
      await drained(queue);
      const deviceId = await deviceOf(q.projectId, 'long');
      const res = await http().get(`/devices/${deviceId}/metrics`).set(q.headers).expect(200);
      expect(res.body).toMatchObject({ readings_examined: 1000, readings_limit: 1000 });
      expect(res.body.items.map((m: { metric: string }) => m.metric)).toEqual(['t']);
      expect(res.body.items[0]).toMatchObject({ readings: 1000, last_value: 1000 });
    });

    it('lists at most 1,000 metrics, by name, and says there were more', async () => {
      const q = await api.tenants.newProject();
      const name = (i: number) => `m${String(i).padStart(4, '0')}`;
      // 16 readings of 64 metrics each, all different: 1,024 metrics.
      await http()
        .post('/telemetry')
        .set(q.headers)
        .send({
          device_external_id: 'wide',
          events: readings(16, (_k, i) =>
            Object.fromEntries(Array.from({ length: 64 }, (_, j) => [name(i * 64 + j), j])),
          ),
        })
        .expect(202);
      await drained(queue);
      const deviceId = await deviceOf(q.projectId, 'wide');
      const res = await http().get(`/devices/${deviceId}/metrics`).set(q.headers).expect(200);
      expect(res.body).toMatchObject({ readings_examined: 16, truncated: true });
      expect(res.body.items.map((m: { metric: string }) => m.metric)).toEqual(
        Array.from({ length: 1000 }, (_, i) => name(i)),
      );
    });

    it('a device without readings has no metrics; another project’s device is a 404', async () => {
      const q = await api.tenants.newProject();
      const deviceId = await newDevice(q, 'quiet');
      const res = await http().get(`/devices/${deviceId}/metrics`).set(q.headers).expect(200);
      expect(res.body).toMatchObject({ readings_examined: 0, items: [], truncated: false });
      const other = await api.tenants.newProject();
      await http().get(`/devices/${deviceId}/metrics`).set(other.headers).expect(404);
      const readOnly = await api.tenants.newKey(q.projectId, ['read']);
      await http().get(`/devices/${deviceId}/metrics`).set('X-API-Key', readOnly.key).expect(200);
      const ingestOnly = await api.tenants.newKey(q.projectId, ['ingest']);
      await http().get(`/devices/${deviceId}/metrics`).set('X-API-Key', ingestOnly.key).expect(403);
    });
  });

  describe('POST /telemetry says how many values were not numbers', () => {
    it('counts strings, booleans and nulls in data', async () => {
      const res = await http()
        .post('/telemetry')
        .set(p.headers)
        .send({
          device_external_id: 'mixed',
          events: [
            { ts: at(0), data: { temperature: '21.5', humidity: 40, door: 'open' } },
            { ts: at(1), data: { temperature: 21.7, alarm: false, note: null } },
            { ts: at(2), data: {} },
          ],
        });
      expect(answer(res)).toEqual({
        status: 202,
        body: {
          accepted: 3,
          batch_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          non_numeric_values: 4,
        },
      });
      const numbers = await http()
        .post('/telemetry')
        .set(p.headers)
        .send({ device_external_id: 'mixed', events: readings(2, (k) => ({ t: k, u: -k })) })
        .expect(202);
      expect(numbers.body.non_numeric_values).toBe(0);
    });

    it('is documented in the OpenAPI response', async () => {
      const doc = (await http().get('/docs-json').expect(200)).body;
      expect(doc.components.schemas.IngestAcceptedResponse.properties).toHaveProperty(
        'non_numeric_values',
      );
    });
  });
});
