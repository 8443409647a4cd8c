import { adminHeaders } from '@app/testing';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';

/**
 * What the web console stands on: `GET /api-keys/current` (a key learns its project and
 * scopes) and the api serving the built console at /console.
 */
describe('the console on the api (e2e)', () => {
  jest.setTimeout(30000);
  const built = mkdtempSync(join(tmpdir(), 'console-'));
  mkdirSync(join(built, 'assets'));
  writeFileSync(join(built, 'index.html'), '<!doctype html><title>Telemetry console</title>');
  writeFileSync(join(built, 'assets', 'index-abc123.js'), 'console.log(1)');
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi({ CONSOLE_DIR: built });
  });
  afterAll(async () => {
    await api.close();
    rmSync(built, { recursive: true, force: true });
  });

  describe('GET /api-keys/current', () => {
    it("answers the key's id, name, prefix and scopes and its project, never the secret", async () => {
      const p = await api.tenants.newProject();
      const res = await request(api.server).get('/api-keys/current').set(p.headers);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: p.keyId,
        scopes: ['ingest', 'read', 'manage'],
        prefix: p.apiKey.split('.')[0],
        revoked_at: null,
        project: { id: p.projectId, org_id: p.orgId },
      });
      expect(res.body.key).toBeUndefined();
      expect(JSON.stringify(res.body)).not.toContain(p.apiKey.split('.')[1]);
      const project = await request(api.server).get(`/projects/${p.projectId}`).set(adminHeaders);
      expect(res.body.project).toEqual(project.body);
    });

    it('tells a read key it is one, refuses an ingest key with 403 and no key with 401', async () => {
      const p = await api.tenants.newProject();
      const read = await api.tenants.newKey(p.projectId, ['read']);
      const res = await request(api.server).get('/api-keys/current').set('X-API-Key', read.key);
      expect(res.status).toBe(200);
      expect(res.body.scopes).toEqual(['read']);
      expect(res.body.id).toBe(read.id);

      const ingest = await api.tenants.newKey(p.projectId, ['ingest']);
      const refused = await request(api.server)
        .get('/api-keys/current')
        .set('X-API-Key', ingest.key);
      expect(refused.status).toBe(403);
      expect(refused.body.message).toMatch(/"read" scope/);
      expect((await request(api.server).get('/api-keys/current')).status).toBe(401);
    });

    it('refuses a revoked key', async () => {
      const p = await api.tenants.newProject();
      const key = await api.tenants.newKey(p.projectId, ['read']);
      const del = await request(api.server)
        .delete(`/projects/${p.projectId}/api-keys/${key.id}`)
        .set(adminHeaders);
      expect(del.status).toBe(204);
      const res = await request(api.server).get('/api-keys/current').set('X-API-Key', key.key);
      expect(res.status).toBe(401);
    });
  });

  describe('/console', () => {
    it('serves the built console; its page is asked for again, its hashed assets kept', async () => {
      const redirect = await request(api.server).get('/console');
      expect(redirect.status).toBe(301);
      expect(redirect.headers.location).toBe('/console/');
      const page = await request(api.server).get('/console/');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect(page.text).toContain('Telemetry console');
      expect(page.headers['cache-control']).toBe('no-cache');
      // No inline script on the page that holds a key, unlike the Swagger UI's policy.
      const directive = (name: string) =>
        String(page.headers['content-security-policy'])
          .split(';')
          .map((d) => d.trim())
          .find((d) => d.startsWith(`${name} `));
      expect(directive('script-src')).toBe("script-src 'self'");
      expect(directive('connect-src')).toBe("connect-src 'self'");
      const asset = await request(api.server).get('/console/assets/index-abc123.js');
      expect(asset.status).toBe(200);
      expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect((await request(api.server).get('/console/assets/nothing.js')).status).toBe(404);
    });

    it.each([
      [
        'not built',
        { CONSOLE_DIR: join(tmpdir(), 'no-console-here') },
        /not built here: run `npm run build:console`/,
      ],
      ['switched off', { CONSOLE_ENABLED: 'false', CONSOLE_DIR: built }, /switched off/],
    ])('answers a clear 404 when the console is %s', async (_label, env, message) => {
      const other = await startApi(env);
      try {
        const res = await request(other.server).get('/console/');
        expect(res.status).toBe(404);
        expect(res.body.message).toMatch(message);
      } finally {
        await other.close();
      }
    });
  });
});
