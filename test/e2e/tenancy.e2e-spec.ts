import { adminHeaders, uniqueName } from '@app/testing';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';

describe('tenancy (e2e)', () => {
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api.close();
  });

  const http = () => request(api.server);

  describe('orgs', () => {
    it('creates and reads an org', async () => {
      const name = uniqueName('acme');
      const created = await http().post('/orgs').set(adminHeaders).send({ name }).expect(201);
      expect(created.body).toEqual({
        id: expect.any(String),
        name,
        created_at: expect.any(String),
      });
      expect(new Date(created.body.created_at).toISOString()).toBe(created.body.created_at);
      const got = await http().get(`/orgs/${created.body.id}`).set(adminHeaders).expect(200);
      expect(got.body).toEqual(created.body);
    });

    it('refuses a duplicate name, whatever its case, with 409', async () => {
      const name = uniqueName('dup');
      await http().post('/orgs').set(adminHeaders).send({ name }).expect(201);
      const res = await http()
        .post('/orgs')
        .set(adminHeaders)
        .send({ name: name.toUpperCase() })
        .expect(409);
      expect(res.body).toMatchObject({
        statusCode: 409,
        error: 'Conflict',
        message: expect.stringContaining('already exists'),
      });
    });

    it('answers 404 for an unknown or malformed org id', async () => {
      await http().get('/orgs/00000000-0000-4000-8000-000000000000').set(adminHeaders).expect(404);
      const res = await http().get('/orgs/not-a-uuid').set(adminHeaders).expect(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'org not found' });
    });

    it('requires the admin token', async () => {
      await http().post('/orgs').send({ name: 'x' }).expect(401);
      await http()
        .post('/orgs')
        .set('Authorization', 'Bearer wrong-token-0000000000')
        .send({ name: 'x' })
        .expect(401);
      await http()
        .post('/orgs')
        .set('Authorization', `Basic ${'x'.repeat(40)}`)
        .send({ name: 'x' })
        .expect(401);
      const p = await api.tenants.newProject();
      const res = await http().post('/orgs').set(p.headers).send({ name: 'x' }).expect(401);
      expect(res.body.message).toMatch(/admin token/);
    });
  });

  describe('bad input', () => {
    it.each([
      ['missing name', {}, 'name'],
      ['empty name', { name: '' }, 'name'],
      ['blank name', { name: '   ' }, 'name'],
      ['number name', { name: 42 }, 'name'],
      ['over-long name', { name: 'x'.repeat(201) }, 'name'],
      ['control characters', { name: 'a\u0000b' }, 'name'],
      ['unknown field', { name: 'ok', extra: 1 }, 'extra'],
    ])('%s → 422 naming the field', async (_label, body, field) => {
      const res = await http().post('/orgs').set(adminHeaders).send(body).expect(422);
      expect(res.body.statusCode).toBe(422);
      expect(res.body.error).toBe('Unprocessable Entity');
      expect(res.body.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field })]),
      );
    });

    it('malformed JSON → 400', async () => {
      const res = await http()
        .post('/orgs')
        .set(adminHeaders)
        .set('Content-Type', 'application/json')
        .send('{"name": ')
        .expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(res.body.message).toMatch(/^the request body is not valid JSON \(.+\)$/);
    });

    it('a JSON array body → 422', async () => {
      const res = await http()
        .post('/orgs')
        .set(adminHeaders)
        .send([{ name: 'x' }]);
      expect(res.status).toBe(422);
    });

    it('a body over 8 MiB → 413', async () => {
      const res = await http()
        .post('/orgs')
        .set(adminHeaders)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ name: 'x'.repeat(9 * 1024 * 1024) }))
        .expect(413);
      expect(res.body.statusCode).toBe(413);
    });

    it('an unknown route → 404 in the contract shape', async () => {
      const res = await http().get('/nope').expect(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'no such route' });
    });

    it('limit out of range → 422', async () => {
      const res = await http().get('/orgs?limit=0').set(adminHeaders).expect(422);
      expect(res.body.details[0].field).toBe('limit');
      await http().get('/orgs?limit=abc').set(adminHeaders).expect(422);
      await http().get('/orgs?limit=1001').set(adminHeaders).expect(422);
      await http().get('/orgs?cursor=garbage').set(adminHeaders).expect(422);
    });
  });

  describe('projects', () => {
    it('creates, lists with a cursor, reads and updates projects', async () => {
      const orgId = await api.tenants.newOrg();
      const names = [uniqueName('p1'), uniqueName('p2'), uniqueName('p3')];
      for (const name of names) {
        const res = await http()
          .post(`/orgs/${orgId}/projects`)
          .set(adminHeaders)
          .send({ name })
          .expect(201);
        expect(res.body).toEqual({
          id: expect.any(String),
          org_id: orgId,
          name,
          auto_register_devices: true,
          retention_days: null,
          created_at: expect.any(String),
        });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: request.Response = await http()
          .get(`/orgs/${orgId}/projects`)
          .query({ limit: 2, ...(cursor && { cursor }) })
          .set(adminHeaders)
          .expect(200);
        seen.push(...page.body.items.map((p: { name: string }) => p.name));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(names);

      const dup = await http()
        .post(`/orgs/${orgId}/projects`)
        .set(adminHeaders)
        .send({ name: names[0] });
      expect(dup.status).toBe(409);

      const list = await http().get(`/orgs/${orgId}/projects`).set(adminHeaders).expect(200);
      const id = list.body.items[0].id as string;
      const patched = await http()
        .patch(`/projects/${id}`)
        .set(adminHeaders)
        .send({ auto_register_devices: false })
        .expect(200);
      expect(patched.body.auto_register_devices).toBe(false);
      await http().get(`/projects/${id}`).set(adminHeaders).expect(200);
    });

    it('answers an empty patch with the project unchanged (found by the fuzzer: was a 500)', async () => {
      const { projectId } = await api.tenants.newProject();
      const before = await http().get(`/projects/${projectId}`).set(adminHeaders).expect(200);
      for (const send of [
        () => http().patch(`/projects/${projectId}`).set(adminHeaders).send({}),
        () =>
          http()
            .patch(`/projects/${projectId}`)
            .set(adminHeaders)
            .set('Content-Type', 'application/json')
            .set('Content-Length', '0'),
      ]) {
        expect((await send().expect(200)).body).toEqual(before.body);
      }
    });

    it('takes a retention in days, null for the global one, and refuses anything else', async () => {
      const orgId = await api.tenants.newOrg();
      const created = await http()
        .post(`/orgs/${orgId}/projects`)
        .set(adminHeaders)
        .send({ name: uniqueName('kept'), retention_days: 30 })
        .expect(201);
      expect(created.body.retention_days).toBe(30);
      const path = `/projects/${created.body.id}`;
      const patch = (body: object) => http().patch(path).set(adminHeaders).send(body);
      expect((await patch({ retention_days: 365 }).expect(200)).body.retention_days).toBe(365);
      // Other fields leave it alone; null gives the global maximum back.
      expect((await patch({ auto_register_devices: false }).expect(200)).body.retention_days).toBe(
        365,
      );
      expect((await patch({ retention_days: null }).expect(200)).body.retention_days).toBeNull();
      for (const [value, message] of [
        [0, 'retention_days must be at least 1 (null keeps readings)'],
        [-3, 'retention_days must be at least 1 (null keeps readings)'],
        [1.5, 'retention_days must be a whole number of days, or null'],
        ['30', 'retention_days must be a whole number of days, or null'],
        [36501, 'retention_days must be at most 36500'],
      ] as const) {
        const res = await patch({ retention_days: value }).expect(422);
        expect(res.body.details).toEqual([{ field: 'retention_days', message }]);
      }
      expect((await http().get(path).set(adminHeaders).expect(200)).body.retention_days).toBeNull();
    });

    it('404s a project in an unknown org', async () => {
      await http()
        .post('/orgs/00000000-0000-4000-8000-000000000000/projects')
        .set(adminHeaders)
        .send({ name: 'x' })
        .expect(404);
    });
  });

  describe('api keys', () => {
    it('shows the key once, stores no secret in lists, defaults to every scope', async () => {
      const p = await api.tenants.newProject();
      const created = await http()
        .post(`/projects/${p.projectId}/api-keys`)
        .set(adminHeaders)
        .send({ name: 'gateway' })
        .expect(201);
      expect(created.body).toMatchObject({ name: 'gateway', scopes: ['ingest', 'read', 'manage'] });
      expect(created.body.key).toMatch(/^tpk_[a-z2-7]{12}\.[A-Za-z0-9_-]{43}$/);
      expect(created.body.key.startsWith(`${created.body.prefix}.`)).toBe(true);

      const list = await http()
        .get(`/projects/${p.projectId}/api-keys`)
        .set(adminHeaders)
        .expect(200);
      expect(list.body.items).toHaveLength(2);
      const text = JSON.stringify(list.body);
      expect(text).not.toContain(created.body.key.split('.')[1]);
      expect(text).not.toContain('secret');
      expect(list.body.items[1]).toEqual({
        id: created.body.id,
        name: 'gateway',
        prefix: created.body.prefix,
        scopes: ['ingest', 'read', 'manage'],
        created_at: created.body.created_at,
        last_used_at: null,
        revoked_at: null,
      });
    });

    it('validates scopes', async () => {
      const p = await api.tenants.newProject();
      const res = await http()
        .post(`/projects/${p.projectId}/api-keys`)
        .set(adminHeaders)
        .send({ scopes: ['read', 'root'] })
        .expect(422);
      expect(res.body.details[0].field).toBe('scopes');
    });

    it('404s revoking a key of another project', async () => {
      const a = await api.tenants.newProject();
      const b = await api.tenants.newProject();
      await http()
        .delete(`/projects/${b.projectId}/api-keys/${a.keyId}`)
        .set(adminHeaders)
        .expect(404);
      await http().get(`/devices/00000000-0000-4000-8000-000000000000`).set(a.headers).expect(404);
    });
  });

  describe('devices', () => {
    it('registers, lists by tag, reads and updates devices', async () => {
      const p = await api.tenants.newProject();
      const base = `/projects/${p.projectId}/devices`;
      const d1 = await http()
        .post(base)
        .set(p.headers)
        .send({ external_id: 'sensor-01', name: 'North', tags: ['greenhouse', 'north', 'north'] })
        .expect(201);
      expect(d1.body).toEqual({
        id: expect.any(String),
        project_id: p.projectId,
        external_id: 'sensor-01',
        name: 'North',
        tags: ['greenhouse', 'north'],
        created_at: expect.any(String),
        last_seen_at: null,
      });
      await http().post(base).set(p.headers).send({ external_id: 'sensor-02' }).expect(201);
      const dup = await http()
        .post(base)
        .set(p.headers)
        .send({ external_id: 'sensor-01' })
        .expect(409);
      expect(dup.body.message).toContain('sensor-01');

      const all = await http().get(base).set(p.headers).expect(200);
      expect(all.body.items.map((d: { external_id: string }) => d.external_id)).toEqual([
        'sensor-01',
        'sensor-02',
      ]);
      const tagged = await http().get(base).query({ tag: 'north' }).set(p.headers).expect(200);
      expect(tagged.body.items.map((d: { id: string }) => d.id)).toEqual([d1.body.id]);

      const patched = await http()
        .patch(`/devices/${d1.body.id}`)
        .set(p.headers)
        .send({ tags: ['south'], name: null })
        .expect(200);
      expect(patched.body).toMatchObject({ tags: ['south'], name: null, external_id: 'sensor-01' });
      const got = await http().get(`/devices/${d1.body.id}`).set(p.headers).expect(200);
      expect(got.body.tags).toEqual(['south']);
    });

    it.each([
      ['missing external_id', {}, 'external_id'],
      ['external_id with spaces', { external_id: 'a b' }, 'external_id'],
      ['over-long external_id', { external_id: 'x'.repeat(129) }, 'external_id'],
      ['tags not an array', { external_id: 'x', tags: 'a' }, 'tags'],
      ['bad tag', { external_id: 'x', tags: ['ok', 'not ok'] }, 'tags'],
      [
        'too many tags',
        { external_id: 'x', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) },
        'tags',
      ],
      ['unknown field', { external_id: 'x', project_id: 'y' }, 'project_id'],
    ])('%s → 422', async (_label, body, field) => {
      const p = await api.tenants.newProject();
      const res = await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send(body)
        .expect(422);
      expect(res.body.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field })]),
      );
    });

    it('refuses null for fields that are optional but not nullable (422, not 500)', async () => {
      const p = await api.tenants.newProject();
      const d = await http()
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'n' })
        .expect(201);
      const res = await http()
        .patch(`/devices/${d.body.id}`)
        .set(p.headers)
        .send({ tags: null })
        .expect(422);
      expect(res.body.details[0].field).toBe('tags');
      await http()
        .patch(`/projects/${p.projectId}`)
        .set(adminHeaders)
        .send({ name: null })
        .expect(422);
      await http()
        .patch(`/projects/${p.projectId}`)
        .set(adminHeaders)
        .send({ auto_register_devices: null })
        .expect(422);
      await http()
        .post(`/projects/${p.projectId}/api-keys`)
        .set(adminHeaders)
        .send({ scopes: null })
        .expect(422);
    });

    it('enforces scopes: 403 for a key without the scope', async () => {
      const p = await api.tenants.newProject();
      const readOnly = await api.tenants.newKey(p.projectId, ['read']);
      const ingestOnly = await api.tenants.newKey(p.projectId, ['ingest']);
      const base = `/projects/${p.projectId}/devices`;
      const res = await http()
        .post(base)
        .set('X-API-Key', readOnly.key)
        .send({ external_id: 'a' })
        .expect(403);
      expect(res.body.message).toContain('manage');
      await http().get(base).set('X-API-Key', readOnly.key).expect(200);
      await http().get(base).set('X-API-Key', ingestOnly.key).expect(403);
    });

    it("404s another project's devices and project routes", async () => {
      const a = await api.tenants.newProject();
      const b = await api.tenants.newProject();
      const dev = await http()
        .post(`/projects/${a.projectId}/devices`)
        .set(a.headers)
        .send({ external_id: 'mine' })
        .expect(201);
      await http().get(`/devices/${dev.body.id}`).set(b.headers).expect(404);
      await http()
        .patch(`/devices/${dev.body.id}`)
        .set(b.headers)
        .send({ name: 'stolen' })
        .expect(404);
      await http().get(`/projects/${a.projectId}/devices`).set(b.headers).expect(404);
      const after = await http().get(`/devices/${dev.body.id}`).set(a.headers).expect(200);
      expect(after.body.name).toBeNull();
    });
  });

  describe('http', () => {
    it('echoes a sane X-Request-Id and makes one otherwise', async () => {
      const res = await http().get('/health/live').set('X-Request-Id', 'abc-123').expect(200);
      expect(res.headers['x-request-id']).toBe('abc-123');
      const fresh = await http()
        .get('/health/live')
        .set('X-Request-Id', 'bad id with spaces')
        .expect(200);
      expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('sends security headers', async () => {
      const res = await http().get('/health/live').expect(200);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBeDefined();
      expect(res.headers['x-powered-by']).toBeUndefined();
    });

    it('serves health, metrics and docs without credentials', async () => {
      await http().get('/health/live').expect(200, { status: 'ok' });
      const ready = await http().get('/health/ready').expect(200);
      expect(ready.body.info).toMatchObject({
        database: { status: 'up' },
        redis: { status: 'up' },
      });
      const metrics = await http().get('/metrics').expect(200);
      expect(metrics.headers['content-type']).toContain('text/plain');
      expect(metrics.text).toContain('http_request_duration_seconds_bucket');
      expect(metrics.text).toContain('route="/health/live"');
      expect(metrics.text).toContain('process_cpu_seconds_total');
      const ui = await http().get('/docs').expect(200);
      expect(ui.text).toContain('swagger');
      const doc = await http().get('/docs-json').expect(200);
      expect(doc.body.openapi).toMatch(/^3\./);
    });
  });
});
