import { API_KEY_SCOPES } from '@app/tenancy';
import { adminHeaders } from '@app/testing';
import { DataSource } from 'typeorm';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { rule } from '../support/fixtures';
import { requiredScope } from '../support/openapi-fuzz';

type Schema = {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  example?: unknown;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  allOf?: Schema[];
};
type Operation = {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{
    name: string;
    in: string;
    required?: boolean;
    schema?: Schema;
    example?: unknown;
  }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses?: Record<string, { description?: string }>;
};
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
};

/** Routes that need no credential at all. */
const PUBLIC = [/^\/$/, /^\/health\//, /^\/metrics$/, /^\/docs/];
/**
 * API-key routes whose path names no tenant resource: the key's own project is the only
 * one they can touch (e.g. POST /telemetry). They may succeed for the foreign key, but
 * must leave the other tenant's data alone. Each entry says why it is safe.
 */
const CREDENTIAL_SCOPED: Record<string, string> = {
  'GET /api-keys/current': 'describes the presented key itself, in its own project only',
  'POST /telemetry':
    "the body names a device by external id, looked up (or registered) in the key's own project only",
};

/**
 * Walks every route the app registers with another tenant's credentials, once with a key
 * of every scope and once with a key of each single scope, and fails if any answers
 * anything but 401/403/404 or changes the victim's data. A route added later without a
 * tenant check, or with a path parameter this walk cannot fill, fails here; so does a
 * tenant check that only keys of some scopes meet.
 */
describe('tenant isolation (e2e)', () => {
  let api: RunningApi;
  let doc: Document;
  let victim: {
    orgId: string;
    projectId: string;
    keyId: string;
    deviceId: string;
    ruleId: string;
    alertId: string;
    webhookId: string;
    deliveryId: string;
    silenceId: string;
  };
  let attacker: { apiKey: string; projectId: string };

  beforeAll(async () => {
    api = await startApi();
    doc = (await request(api.server).get('/docs-json').expect(200)).body as Document;
    const a = await api.tenants.newProject();
    const device = await request(api.server)
      .post(`/projects/${a.projectId}/devices`)
      .set(a.headers)
      .send({ external_id: 'victim-device', tags: ['t'] })
      .expect(201);
    const explicitRule = await rule(api, a, {
      name: 'r',
      metric: 'm',
      threshold: 1,
      scope: 'EXPLICIT',
    }).expect(201);
    await request(api.server)
      .post(`/rules/${explicitRule.body.id}/devices`)
      .set(a.headers)
      .send({ device_ids: [device.body.id] })
      .expect(200);
    // An alert of the victim's, made the way evaluation makes them.
    const [alert] = await api.app.get(DataSource).query(
      `INSERT INTO alerts (project_id, rule_id, device_id, status, triggered_at, details)
       VALUES ($1, $2, $3, 'open', now(), '{}') RETURNING id`,
      [a.projectId, explicitRule.body.id, device.body.id],
    );
    const webhook = await request(api.server)
      .post(`/projects/${a.projectId}/webhooks`)
      .set(a.headers)
      .send({ url: 'https://hooks.example.com/victim' })
      .expect(201);
    // A delivery of the victim's, made the way fan-out makes them.
    const [delivery] = await api.app.get(DataSource).query(
      `WITH e AS (
         INSERT INTO alert_events (project_id, alert_id, type, payload, dispatched_at)
         VALUES ($1, $2, 'alert.created', '{}', now()) RETURNING id)
       INSERT INTO webhook_deliveries (project_id, webhook_id, event_id, event_type, status, attempts)
       SELECT $1, $3, e.id, 'alert.created', 'failed', 8 FROM e RETURNING id`,
      [a.projectId, alert.id, webhook.body.id],
    );
    const silence = await request(api.server)
      .post(`/projects/${a.projectId}/silences`)
      .set(a.headers)
      .send({
        rule_id: explicitRule.body.id,
        ends_at: new Date(Date.now() + 3600_000).toISOString(),
        comment: 'maintenance',
        created_by: 'victim',
      })
      .expect(201);
    victim = {
      orgId: a.orgId,
      projectId: a.projectId,
      keyId: a.keyId,
      deviceId: device.body.id,
      ruleId: explicitRule.body.id,
      alertId: alert.id,
      webhookId: webhook.body.id,
      deliveryId: delivery.id,
      silenceId: silence.body.id,
    };
    attacker = await api.tenants.newProject();
  });
  afterAll(() => api.close());

  const fixtures = (): Record<string, string> => ({
    org_id: victim.orgId,
    project_id: victim.projectId,
    key_id: victim.keyId,
    device_id: victim.deviceId,
    external_id: 'victim-device',
    rule_id: victim.ruleId,
    alert_id: victim.alertId,
    webhook_id: victim.webhookId,
    delivery_id: victim.deliveryId,
    silence_id: victim.silenceId,
  });

  it('documents every route the router registered', () => {
    const router = (api.app.getHttpAdapter().getInstance() as { router: { stack: RouterLayer[] } })
      .router;
    const registered = router.stack
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map(
          (m) => `${m} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
        ),
      )
      // Swagger's own routes and Nest's catch-all 404 handler are not API routes.
      .filter((r) => !/ \/docs/.test(r) && !r.endsWith(' /{*path}'));
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(registered.length).toBeGreaterThan(10);
    expect(registered.filter((r) => !documented.includes(r))).toEqual([]);
  });

  /**
   * One walk with `foreignKey`. A route its scope covers must be stopped by the tenant
   * check (404: never 403, which would confirm the resource exists); one it doesn't, by
   * the scope check (403). The route's scope is the one its 403 response documents.
   */
  async function walk(foreignKey: string, scopes: readonly string[]): Promise<string[]> {
    const violations: string[] = [];
    let walked = 0;
    let inScope = 0;

    for (const [path, ops] of Object.entries(doc.paths)) {
      if (PUBLIC.some((re) => re.test(path))) continue;
      for (const [method, op] of Object.entries(ops)) {
        const route = `${method.toUpperCase()} ${path}`;
        const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const unknown = params.filter((p) => !(p in fixtures()));
        if (unknown.length > 0) {
          violations.push(`${route}: no fixture for {${unknown.join('}, {')}}; add one`);
          continue;
        }
        const url = path.replace(/\{(\w+)\}/g, (_m, p: string) => fixtures()[p]);
        const schema = op.requestBody?.content['application/json']?.schema;
        const body = schema ? sample(schema, doc) : undefined;
        const isAdmin = op.security?.some((s) => 'admin' in s);
        const isKey = op.security?.some((s) => 'api-key' in s);
        if (!isAdmin && !isKey) {
          violations.push(`${route}: declares no security scheme`);
          continue;
        }
        const required = isKey ? requiredScope(op) : undefined;
        if (isKey && !required) {
          violations.push(`${route}: documents no 403 naming the scope it requires`);
          continue;
        }
        // Valid query parameters too: validation must not be what stops the request.
        const query = Object.fromEntries(
          (op.parameters ?? [])
            .filter((p) => p.in === 'query' && (p.required || p.schema?.example !== undefined))
            .map((p) => [p.name, p.example ?? sample(p.schema ?? {}, doc)]),
        );
        let req = request(api.server)
          [method as 'get'](url)
          .query(query)
          .set('X-API-Key', foreignKey);
        if (body !== undefined) req = req.send(body as object);
        const res = await req;
        walked++;
        const scoped = params.length === 0 && isKey && CREDENTIAL_SCOPED[route];
        const covered = required !== undefined && scopes.includes(required);
        if (covered) inScope++;
        const expected = isAdmin ? [401] : covered ? [404] : [403];
        if (!scoped && !expected.includes(res.status)) {
          violations.push(
            `${method.toUpperCase()} ${url} answered ${res.status}, not ${expected.join('/')}: ${JSON.stringify(res.body)}`,
          );
        }
        if (params.length === 0 && isKey && !scoped && ![401, 403, 404].includes(res.status)) {
          violations.push(`${route}: names no tenant; list it in CREDENTIAL_SCOPED with why`);
        }
      }
    }
    if (walked <= 10) violations.push(`only ${walked} routes walked`);
    // Each scope has routes of its own: the tenant check, not the scope check, stopped them.
    if (scopes.length > 0 && inScope === 0) violations.push(`no route in scope ${scopes.join()}`);
    return violations;
  }

  it.each([
    ['every scope', API_KEY_SCOPES],
    ['ingest', ['ingest']],
    ['read', ['read']],
    ['manage', ['manage']],
  ] as Array<[string, readonly string[]]>)(
    'answers a foreign key with %s 404 in its scope, 403 outside it, 401 on admin routes, and changes nothing',
    async (_label, scopes) => {
      const before = await snapshot(api, victim.projectId, victim.orgId);
      const foreign =
        scopes === API_KEY_SCOPES
          ? attacker.apiKey
          : (await api.tenants.newKey(attacker.projectId, [...scopes])).key;
      expect(await walk(foreign, scopes)).toEqual([]);
      expect(await snapshot(api, victim.projectId, victim.orgId)).toEqual(before);
      // The victim's own key still works: the walk revoked nothing.
      await request(api.server)
        .get(`/devices/${victim.deviceId}`)
        .set('X-API-Key', (await keyOf()).key)
        .expect(200);
    },
  );

  it('refuses admin routes to an admin token of the wrong value, and API routes to the admin token', async () => {
    await request(api.server)
      .get(`/orgs/${victim.orgId}`)
      .set('Authorization', 'Bearer x'.repeat(3))
      .expect(401);
    await request(api.server).get(`/devices/${victim.deviceId}`).set(adminHeaders).expect(401);
  });

  async function keyOf(): Promise<{ key: string }> {
    return api.tenants.newKey(victim.projectId);
  }
});

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

/** A plausible valid body from the OpenAPI schema, so validation can't mask a missing check. */
function sample(schema: Schema, doc: Document): unknown {
  if (schema.$ref) return sample(doc.components.schemas[schema.$ref.split('/').pop()!], doc);
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => sample(s, doc) as object));
  if (schema.example !== undefined) return schema.example;
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(name) || prop.example !== undefined)
          out[name] = sample(prop, doc);
      }
      return out;
    }
    case 'array':
      return schema.items ? [sample(schema.items, doc)] : [];
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    default:
      return schema.format === 'uuid' ? '00000000-0000-4000-8000-000000000000' : 'sample';
  }
}

/** Every row that belongs to the victim: the org, and each table with a project_id column. */
async function snapshot(
  api: RunningApi,
  projectId: string,
  orgId: string,
): Promise<Record<string, unknown>> {
  const ds = api.app.get(DataSource);
  const tables: Array<{ table_name: string }> = await ds.query(
    `SELECT table_name FROM information_schema.columns
      WHERE table_schema = 'public' AND column_name = 'project_id' ORDER BY table_name`,
  );
  const out: Record<string, unknown> = {
    orgs: await ds.query(`SELECT * FROM orgs WHERE id = $1`, [orgId]),
    projects: await ds.query(`SELECT * FROM projects WHERE id = $1`, [projectId]),
  };
  for (const { table_name } of tables) {
    const rows: Array<Record<string, unknown>> = await ds.query(
      `SELECT * FROM "${table_name}" WHERE project_id = $1 ORDER BY 1`,
      [projectId],
    );
    // last_used_at is bookkeeping of the victim's own key use, not tenant data.
    out[table_name] = rows.map(({ last_used_at: _ignored, ...rest }) => rest);
  }
  return out;
}
