import Ajv, { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
// openapi-sampler ships CommonJS without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sampler = require('openapi-sampler') as {
  sample(schema: unknown, options: { skipReadOnly?: boolean }, spec: unknown): unknown;
};

/**
 * Requests generated from the committed OpenAPI document, for `test/fuzz`: valid ones
 * (openapi-sampler's sample of each body, the document's examples, real ids of the fuzz
 * world) and mutated ones (wrong types, missing and extra fields, extreme numbers, odd
 * Unicode, NUL, deep nesting, odd timestamps, forged cursors, headers missing, doubled or
 * wrong), as fast-check arbitraries so a failure is shrunk and replayed from its seed.
 */

export const DOCUMENT_PATH = join(__dirname, '..', '..', 'docs', 'openapi.json');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}
interface Response {
  description?: string;
  content?: Record<string, { schema: Schema }>;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, Response>;
  security?: Record<string, unknown>[];
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

export interface Route {
  method: string;
  path: string;
  operation: Operation;
  /** `admin`, `api-key` or none (public). */
  scheme: 'admin' | 'api-key' | 'public';
  name: string;
}

export function loadDocument(): OpenApiDocument {
  return JSON.parse(readFileSync(DOCUMENT_PATH, 'utf8')) as OpenApiDocument;
}

/**
 * The scope an API-key route requires, as its documented 403 names it (`… lacks the
 * "read" scope`); undefined when the document names none.
 */
export function requiredScope(operation: {
  responses?: Record<string, { description?: string } | undefined>;
}): string | undefined {
  return /lacks the "(\w+)" scope/.exec(operation.responses?.['403']?.description ?? '')?.[1];
}

export function routesOf(doc: OpenApiDocument): Route[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      operation,
      scheme: operation.security?.length
        ? (Object.keys(operation.security[0])[0] as 'admin' | 'api-key')
        : 'public',
      name: `${method.toUpperCase()} ${path}`,
    })),
  );
}

/**
 * The fuzz world: real resources of two tenants, so generated ids reach real rows (and,
 * for the other tenant's, must be refused). Keys by scope; the ids each path parameter
 * can take.
 */
export interface FuzzWorld {
  adminToken: string;
  /** API keys of the fuzzed tenant: every scope, and one per scope. */
  keys: { all: string; ingest: string; read: string; manage: string; revoked: string };
  /** The other tenant's key with every scope. */
  foreignKey: string;
  /**
   * Path parameter name → ids of the fuzzed tenant and of the other one; `spare`: own ids
   * DELETE routes take instead, so deleting leaves the others to the rest of the run.
   */
  ids: Record<string, { own: string[]; foreign: string[]; spare?: string[] }>;
  deviceExternalId: string;
  /** Where webhook bodies point: a receiver of the test's. */
  webhookUrl: string;
  /** `next_cursor`s the api issued (of several lists: one list's is another's forgery). */
  cursors: string[];
}

export interface FuzzRequest {
  route: string;
  method: string;
  /** Path with query string. */
  url: string;
  /** Raw header list: a name may appear twice. */
  headers: [string, string][];
  body?: Buffer;
  /** What kind of case this is, for the tallies. */
  kind: string;
  /** The credential sent: `key:<scope>` (the fuzzed tenant's), `key:foreign`, `admin`, … */
  credential: string;
  /** Whose ids the path and the body name: the fuzzed tenant's (`own`) or the other one's. */
  tenants: ('own' | 'foreign')[];
}

export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Sends a request as given: doubled headers stay doubled, the body is sent as bytes. */
export function send(port: number, req: FuzzRequest, timeoutMs = 30000): Promise<FuzzResponse> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: req.method,
        path: req.url,
        // A raw header list gets no Host from Node: HTTP/1.1 requires one (Node's server
        // answers a bare 400 without it, before the api sees the request).
        // Nor a Content-Length: without one (or chunked), a GET's body would be read as
        // the next request.
        headers: [
          ['Host', `127.0.0.1:${port}`],
          ...req.headers,
          ...(req.body && !req.headers.some(([h]) => /^transfer-encoding$/i.test(h))
            ? [['Content-Length', String(req.body.length)]]
            : []),
        ].flat(),
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on('error', reject);
    r.end(req.body);
  });
}

// ---------------------------------------------------------------------------------------
// Values

/** Strings that have broken parsers, databases and loggers somewhere. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDFFF\uD800',
  '\uFFFF',
  '\uFEFF',
  '\u202Eevil',
  '𝕿𝖊𝖒𝖕',
  '🌡️🔥',
  'é',
  'e\u0301',
  '\r\n',
  '%00',
  '%',
  '%zz',
  '../../etc/passwd',
  "' OR 1=1 --",
  '"; DROP TABLE devices; --',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'x'.repeat(300),
  'x'.repeat(70000),
];

/** Numbers at and past every edge a schema or a column has. */
const NASTY_NUMBERS = [
  0,
  -0,
  -1,
  1,
  0.5,
  1e-7,
  5e-324,
  -5e-324,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
  2 ** 53 + 2,
  1e21,
  1.7976931348623157e308,
  -1.7976931348623157e308,
];

/** Timestamps: valid, at the edges of what PostgreSQL stores, odd offsets, not timestamps. */
export const ODD_TIMESTAMPS = [
  '2025-01-01T00:00:00Z',
  '2025-01-01T00:00:00.123456789Z',
  '2025-01-01T00:00:00+15:59',
  '2025-01-01T00:00:00+16:00',
  '2025-01-01T00:00:00-23:59',
  '2025-01-01T00:00:00+99:99',
  '2025-01-01T00:00:00',
  '2025-02-30T00:00:00Z',
  '2025-01-01T24:00:00Z',
  '2025-01-01T23:59:60Z',
  '0000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '1969-12-31T23:59:59Z',
  '2100-01-01T00:00:00Z',
  '1735689600',
  '1735689600.5',
  '-1',
  '1e10',
  '99999999999999999999',
  'now',
  'infinity',
  '-infinity',
  'epoch',
  'NaN',
  'today',
  '2025-W01',
  '',
];

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const nastyNumber = fc.oneof(
  fc.constantFrom(...NASTY_NUMBERS),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Nested arrays or objects `depth` deep: the parser, validator and jsonb must cope. */
function nested(depth: number, asObject: boolean): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

/** Any JSON value, weighted towards the ones that break things. */
export const oddValue: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 3, arbitrary: nastyNumber },
  { weight: 2, arbitrary: fc.constantFrom<Json>(null, true, false, [], {}, [null], { '': null }) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_TIMESTAMPS) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(2, 33, 200, 1000), fc.boolean())
      .map(([d, o]) => nested(d, o)),
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((s) => JSON.parse(s) as Json) },
);

// ---------------------------------------------------------------------------------------
// Requests

export interface Generators {
  routes: Route[];
  request: fc.Arbitrary<FuzzRequest>;
}

function deref(doc: OpenApiDocument, schema: Schema): Schema {
  return schema.$ref ? deref(doc, doc.components.schemas[schema.$ref.split('/').pop()!]) : schema;
}

/** A cursor's position value: a time, an id, a number or a string, odd ones first. */
const cursorPart = fc.oneof(
  fc.constantFrom<string | number>(...ODD_TIMESTAMPS, ...NASTY_NUMBERS),
  fc.uuid(),
  nastyString,
);

/**
 * A base64url "cursor" the server never issued: of the issued shape (a JSON array of 2 or
 * 3 positions) with odd positions, random JSON, or not JSON at all.
 */
const forgedCursor = fc.oneof(
  fc
    .array(cursorPart, { minLength: 2, maxLength: 3 })
    .map((parts) => Buffer.from(JSON.stringify(parts)).toString('base64url')),
  fc
    .json({ maxDepth: 2 })
    .map((j) => Buffer.from(j).toString('base64url'))
    .map((s) => s || 'e30'),
  fc.constantFrom(
    Buffer.from('{"ts":"2025-01-01T00:00:00+20:00","id":"x"}').toString('base64url'),
    Buffer.from('{"k":[1e999]}').toString('base64url'),
    Buffer.from('\u0000\u0000').toString('base64url'),
    '!!!',
    '=',
  ),
  nastyString,
);

/** A valid value for a query parameter: its example, enum or type. */
function validQuery(doc: OpenApiDocument, p: Parameter, world: FuzzWorld): fc.Arbitrary<string> {
  const s = deref(doc, p.schema);
  if (p.name === 'device_id') return fc.constantFrom(...world.ids.device_id.own);
  if (p.name === 'rule_id') return fc.constantFrom(...world.ids.rule_id.own);
  if (p.name === 'webhook_id') return fc.constantFrom(...world.ids.webhook_id.own);
  if (p.name === 'external_id') return fc.constant(world.deviceExternalId);
  if (p.name === 'metric') return fc.constantFrom('t', 'temperature', 'humidity');
  if (p.name === 'cursor') return fc.constantFrom(...world.cursors);
  if (s.enum) return fc.constantFrom(...s.enum.map(String));
  if (s.oneOf) {
    // A time: ISO 8601 or unix seconds.
    return fc
      .date({ min: new Date('2024-06-01'), max: new Date('2025-06-01'), noInvalidDate: true })
      .chain((d) =>
        fc.constantFrom(
          d.toISOString(),
          String(Math.floor(d.getTime() / 1000)),
          d.toISOString().replace('Z', '+02:00'),
        ),
      );
  }
  if (s.format === 'uuid') return fc.uuid();
  if (s.type === 'number' || s.type === 'integer')
    return fc
      .integer({ min: s.minimum ?? 0, max: Math.min(s.maximum ?? 100000, 100000) })
      .map(String);
  return fc.string({ minLength: 1, maxLength: 12 });
}

function queryValue(
  doc: OpenApiDocument,
  p: Parameter,
  world: FuzzWorld,
): fc.Arbitrary<string[] | undefined> {
  const valid = validQuery(doc, p, world);
  return fc.oneof(
    { weight: p.required ? 1 : 8, arbitrary: fc.constant(undefined) },
    { weight: 20, arbitrary: valid.map((v) => [v]) },
    { weight: 1, arbitrary: fc.tuple(valid, valid).map(([a, b]) => [a, b]) },
    {
      weight: 2,
      arbitrary: (p.name === 'cursor' ? forgedCursor : nastyString).map((v) => [v]),
    },
    {
      weight: 2,
      arbitrary: oddValue.map((v) => [typeof v === 'string' ? v : JSON.stringify(v)]),
    },
    { weight: 1, arbitrary: fc.constantFrom(...ODD_TIMESTAMPS).map((v) => [v]) },
  );
}

function pathValue(
  name: string,
  world: FuzzWorld,
  deleting: boolean,
): fc.Arbitrary<{ value: string; raw?: boolean }> {
  const ids = world.ids[name] ?? { own: [], foreign: [] };
  const own = (deleting && ids.spare) || ids.own;
  return fc.oneof(
    ...(own.length
      ? [{ weight: 12, arbitrary: fc.constantFrom(...own).map((value) => ({ value })) }]
      : []),
    ...(ids.foreign.length
      ? [{ weight: 3, arbitrary: fc.constantFrom(...ids.foreign).map((value) => ({ value })) }]
      : []),
    { weight: 2, arbitrary: fc.uuid().map((value) => ({ value })) },
    { weight: 2, arbitrary: nastyString.map((value) => ({ value })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '%',
          '%zz',
          '%00',
          '..%2F..',
          '%C0%AF',
          '%FF',
          'a%2Fb',
          '00000000-0000-0000-0000-000000000000',
        )
        .map((value) => ({ value, raw: true })),
    },
  );
}

/** Credentials for a route: valid of every scope, the other tenant's, wrong, missing, doubled. */
function credentials(
  route: Route,
  world: FuzzWorld,
): fc.Arbitrary<{ headers: [string, string][]; kind: string }> {
  const key = (k: string): [string, string] => ['X-API-Key', k];
  const bearer = (t: string): [string, string] => ['Authorization', `Bearer ${t}`];
  const forgedSecret = world.keys.all.replace(/\.[^.]*$/, `.${'A'.repeat(43)}`);
  const own = (k: string, kind: string) => ({ headers: [key(k)], kind });
  const options: {
    weight: number;
    arbitrary: fc.Arbitrary<{ headers: [string, string][]; kind: string }>;
  }[] = [
    {
      weight: route.scheme === 'api-key' ? 14 : 1,
      arbitrary: fc.constant(own(world.keys.all, 'key:all')),
    },
    { weight: 2, arbitrary: fc.constant(own(world.keys.ingest, 'key:ingest')) },
    { weight: 2, arbitrary: fc.constant(own(world.keys.read, 'key:read')) },
    { weight: 2, arbitrary: fc.constant(own(world.keys.manage, 'key:manage')) },
    { weight: 3, arbitrary: fc.constant(own(world.foreignKey, 'key:foreign')) },
    { weight: 1, arbitrary: fc.constant(own(world.keys.revoked, 'key:revoked')) },
    // bcrypt runs for a real prefix with a wrong secret: rare, it is slow on purpose.
    { weight: 1, arbitrary: fc.constant(own(forgedSecret, 'key:forged')) },
    {
      weight: route.scheme === 'admin' ? 14 : 1,
      arbitrary: fc.constant({ headers: [bearer(world.adminToken)], kind: 'admin' }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({ headers: [bearer(`${world.adminToken}x`)], kind: 'admin:wrong' }),
    },
    { weight: 2, arbitrary: fc.constant({ headers: [], kind: 'none' }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<[string, string]>(
          ['X-API-Key', ''],
          ['X-API-Key', 'tpk_'],
          ['X-API-Key', 'x'.repeat(5000)],
          ['X-API-Key', 'tpk_aaaaaaaaaaaa.'],
          ['Authorization', 'Bearer'],
          ['Authorization', 'Basic YWRtaW46YWRtaW4='],
          ['Authorization', `bearer ${world.adminToken}`],
          ['Authorization', `Bearer  ${world.adminToken}`],
          ['Authorization', world.adminToken],
        )
        .map((h) => ({ headers: [h], kind: 'malformed' })),
    },
    // Doubled: the same credential twice, or a valid one beside a foreign or wrong one.
    {
      weight: 1,
      arbitrary: fc.constant({
        headers: [key(world.keys.all), key(world.keys.all)],
        kind: 'doubled:same',
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        headers: [key(world.keys.all), key(world.foreignKey)],
        kind: 'doubled:foreign',
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        headers: [key(world.keys.read), key(world.keys.all)],
        kind: 'doubled:scopes',
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        headers: [bearer(world.adminToken), bearer('nope')],
        kind: 'doubled:admin',
      }),
    },
  ];
  return fc.oneof(...options);
}

function setAt(value: Json, path: (string | number)[], to: Json | undefined): Json {
  if (path.length === 0) return to === undefined ? null : to;
  if (value === null || typeof value !== 'object') return value;
  const copy: Json = Array.isArray(value) ? [...value] : { ...value };
  const [head, ...rest] = path;
  const container = copy as Record<string | number, Json>;
  if (rest.length === 0 && to === undefined) {
    if (Array.isArray(copy)) copy.splice(Number(head), 1);
    else delete container[head];
  } else container[head] = setAt(container[head], rest, to);
  return copy;
}

/** Every path into a JSON value (objects' keys and arrays' indexes, up to 4 deep). */
function pathsIn(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (prefix.length >= 4 || value === null || typeof value !== 'object') return [];
  const entries: [string | number, Json][] = Array.isArray(value)
    ? value.slice(0, 3).map((v, i) => [i, v])
    : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...pathsIn(v, [...prefix, k])]);
}

type Mutation =
  | { op: 'drop'; at: number }
  | { op: 'set'; at: number; value: Json }
  | { op: 'extra'; at: number; key: string; value: Json };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: oddValue }),
  fc.record({
    op: fc.constant('extra' as const),
    at: fc.nat(),
    key: fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'id', 'project_id', 'x'),
      nastyString,
    ),
    value: oddValue,
  }),
);

function mutate(body: Json, mutations: Mutation[]): Json {
  let out = body;
  for (const m of mutations) {
    const paths = [[], ...pathsIn(out)];
    const at = paths[m.at % paths.length];
    if (m.op === 'drop') out = at.length ? setAt(out, at, undefined) : out;
    else if (m.op === 'set') out = setAt(out, at, m.value);
    else {
      const parent = at.length ? at.slice(0, -1) : [];
      const target = parent.reduce<Json>(
        (v, k) => (v as Record<string | number, Json>)?.[k] ?? null,
        out,
      );
      if (target && typeof target === 'object' && !Array.isArray(target))
        out = setAt(out, [...parent, m.key], m.value);
    }
  }
  return out;
}

/** The valid body of an operation: the sampler's, with the world's ids and fresh names. */
function validBody(doc: OpenApiDocument, route: Route, world: FuzzWorld): fc.Arbitrary<Json> {
  const schema = route.operation.requestBody!.content['application/json'].schema;
  const sample = sampler.sample(schema, { skipReadOnly: true }, doc) as Record<string, Json>;
  return fc.record({ n: fc.nat(), useExample: fc.boolean() }).map(({ n }) => {
    const body: Record<string, Json> = { ...sample };
    const suffix = `${process.pid}-${n.toString(36)}`;
    for (const k of ['name', 'external_id'])
      if (typeof body[k] === 'string') body[k] = `${body[k]}-${suffix}`;
    if ('device_external_id' in body) body.device_external_id = world.deviceExternalId;
    if (Array.isArray(body.device_ids)) body.device_ids = world.ids.device_id.own;
    if (typeof body.url === 'string') body.url = world.webhookUrl;
    if (body.scope === 'ALL') delete body.tag;
    if (route.path === '/telemetry' && Array.isArray(body.events))
      body.events = (body.events as Json[]).map((e, i) => ({
        ...(e as Record<string, Json>),
        ts: new Date(Date.UTC(2025, 0, 1) + ((n * 7 + i) % 1e9) * 1000).toISOString(),
      }));
    return body;
  });
}

/** Bodies that are not the JSON the route wants at all. */
const rawBodies = fc.constantFrom<{ body: Buffer; type?: string }>(
  { body: Buffer.from('{'), type: 'application/json' },
  { body: Buffer.from(''), type: 'application/json' },
  { body: Buffer.from('null'), type: 'application/json' },
  { body: Buffer.from('"text"'), type: 'application/json' },
  { body: Buffer.from('1e999'), type: 'application/json' },
  { body: Buffer.from('{"a":1,"a":2}'), type: 'application/json' },
  { body: Buffer.from(`${'['.repeat(100000)}${']'.repeat(100000)}`), type: 'application/json' },
  { body: Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), type: 'application/json' },
  { body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), type: 'application/json' },
  { body: Buffer.from('{"name":"x"}', 'utf16le'), type: 'application/json; charset=utf-16' },
  { body: Buffer.from('{"name":"x"}'), type: 'text/plain' },
  { body: Buffer.from('name=x'), type: 'application/x-www-form-urlencoded' },
  { body: Buffer.from('{"name":"x"}') },
  { body: Buffer.from('{"name":"x"}'), type: 'application/json, text/plain' },
  { body: Buffer.from('{"name":"x"}'), type: 'application/vnd.api+json' },
  { body: Buffer.from(`{"name":"${'x'.repeat(200 * 1024)}"}`), type: 'application/json' },
  { body: Buffer.from('{"name":"x"}'), type: 'application/json; charset=latin1' },
);

/** Percent-encodes the UTF-8 of a string; a lone surrogate goes as U+FFFD, as a browser sends it. */
function pct(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
}

/** How fast-check prints a request in a counterexample: readable, the body cut short. */
function withDescription(req: FuzzRequest): FuzzRequest {
  return Object.assign(req, {
    [fc.toStringMethod]: () =>
      `${req.method} ${req.url.slice(0, 400)} [${req.kind}] headers=${JSON.stringify(req.headers).slice(0, 400)}` +
      (req.body
        ? ` body(${req.body.length} B)=${JSON.stringify(req.body.toString('utf8').slice(0, 400))}`
        : ''),
  });
}

export function generators(doc: OpenApiDocument, world: FuzzWorld): Generators {
  const routes = routesOf(doc);
  const owners = new Map<string, 'own' | 'foreign'>();
  for (const [name, ids] of Object.entries(world.ids)) {
    // An external id names a device only within the project the path also names, and
    // ingest auto-registers the same external id in any project a key sends it to.
    if (name === 'external_id') continue;
    for (const id of [...ids.own, ...(ids.spare ?? [])]) owners.set(id, 'own');
    for (const id of ids.foreign) owners.set(id, 'foreign');
  }
  /** The tenants whose ids a path names (any id), or a body (ids, not external ids). */
  const tenantsNamed = (path: string, body?: Buffer): ('own' | 'foreign')[] => {
    const text = body?.toString('utf8') ?? '';
    const segments = path.split('/').map((v) => {
      try {
        return decodeURIComponent(v);
      } catch {
        return v;
      }
    });
    return [...owners]
      .filter(([id]) => segments.includes(id) || (/^[0-9a-f-]{36}$/.test(id) && text.includes(id)))
      .map(([, owner]) => owner);
  };
  const perRoute = routes.map((route) => {
    const params = route.operation.parameters ?? [];
    const pathParams = params.filter((p) => p.in === 'path');
    const queryParams = params.filter((p) => p.in === 'query');
    const body = route.operation.requestBody
      ? fc.oneof(
          {
            weight: 5,
            arbitrary: validBody(doc, route, world).map((b) => ({
              json: b as Json,
              kind: 'body:valid',
            })),
          },
          {
            weight: 6,
            arbitrary: fc
              .tuple(
                validBody(doc, route, world),
                fc.array(mutation, { minLength: 1, maxLength: 3 }),
              )
              .map(([b, ms]) => ({ json: mutate(b, ms), kind: 'body:mutated' })),
          },
          { weight: 1, arbitrary: oddValue.map((v) => ({ json: v, kind: 'body:odd' })) },
          { weight: 2, arbitrary: rawBodies.map((raw) => ({ raw, kind: 'body:raw' })) },
        )
      : fc.oneof(
          { weight: 9, arbitrary: fc.constant({ kind: 'nobody' }) },
          { weight: 1, arbitrary: rawBodies.map((raw) => ({ raw, kind: 'body:unexpected' })) },
        );
    const extraHeaders = fc.oneof(
      { weight: 8, arbitrary: fc.constant<[string, string][]>([]) },
      {
        weight: 1,
        arbitrary: fc.constantFrom<[string, string][]>(
          [
            ['Content-Type', 'application/json'],
            ['Content-Type', 'text/plain'],
          ],
          [['Accept', 'application/xml']],
          [['Accept-Encoding', 'gzip, br']],
          [['Content-Encoding', 'gzip']],
          [['X-Forwarded-For', '1.2.3.4, 5.6.7.8']],
          [['X-Request-Id', 'x'.repeat(2000)]],
          [['If-None-Match', '*']],
          [['Transfer-Encoding', 'chunked']],
        ),
      },
    );
    return fc
      .record({
        path: fc.tuple(
          // Only the resource a DELETE removes (its last parameter) comes from the spares.
          ...pathParams.map((p, i) =>
            pathValue(p.name, world, route.method === 'DELETE' && i === pathParams.length - 1),
          ),
          fc.constant(null),
        ),
        query: fc.tuple(...queryParams.map((p) => queryValue(doc, p, world)), fc.constant(null)),
        auth: credentials(route, world),
        body,
        extraHeaders,
      })
      .map(({ path, query, auth, body: b, extraHeaders: extra }): FuzzRequest => {
        let url = route.path;
        pathParams.forEach((p, i) => {
          const v = path[i]!;
          // An empty segment would make another route's URL (`/orgs/` is `/orgs`).
          url = url.replace(`{${p.name}}`, v.raw ? v.value : pct(v.value || ' '));
        });
        const qs = queryParams.flatMap((p, i) =>
          (query[i] ?? []).map((v) => `${pct(p.name)}=${pct(v)}`),
        );
        if (qs.length) url += `?${qs.join('&')}`;
        const headers: [string, string][] = [...auth.headers];
        let payload: Buffer | undefined;
        if ('json' in b) {
          payload = Buffer.from(JSON.stringify(b.json) ?? 'null');
          headers.push(['Content-Type', 'application/json']);
        } else if ('raw' in b) {
          payload = b.raw.body;
          if (b.raw.type) headers.push(['Content-Type', b.raw.type]);
        }
        headers.push(...extra);
        if (headers.some(([h]) => h === 'Content-Encoding' || h === 'Transfer-Encoding'))
          payload = payload ?? Buffer.from('');
        return withDescription({
          route: route.name,
          method: route.method,
          url,
          headers: headers.filter(([, v]) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v)),
          body: payload,
          kind: `${auth.kind} ${b.kind}`,
          credential: auth.kind,
          tenants: tenantsNamed(url.split('?')[0], payload),
        });
      });
  });
  return { routes, request: fc.oneof(...perRoute) };
}

// ---------------------------------------------------------------------------------------
// Checking answers against the document

export class ResponseChecker {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly doc: OpenApiDocument) {
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema(rebase({ components: doc.components }) as object, 'openapi');
  }

  /** The problems with an answer to `route`: an empty list when the document allows it. */
  check(route: Route, req: FuzzRequest, res: FuzzResponse): string[] {
    const problems: string[] = [];
    if (res.status >= 500) problems.push(`answered ${res.status}`);
    // HTTP's own answer to a conditional GET (RFC 9110 §13.1.2), not one an API lists.
    if (
      res.status === 304 &&
      req.headers.some(([h]) => /^if-(none-match|modified-since)$/i.test(h))
    )
      return problems;
    // Node's own refusal of a request line and headers over its 16 KiB limit, before the
    // api sees the request (counted with slack: Node adds Host and Content-Length).
    if (res.status === 431 && req.url.length + JSON.stringify(req.headers).length > 15 * 1024)
      return problems;
    const documented =
      route.operation.responses[String(res.status)] ?? route.operation.responses.default;
    if (!documented) {
      problems.push(
        `answered ${res.status}, which the document does not list (${Object.keys(route.operation.responses).join(', ')})`,
      );
      return problems;
    }
    const type = String(res.headers['content-type'] ?? '')
      .split(';')[0]
      .trim();
    const content = documented.content;
    if (!content) {
      if (res.body.length)
        problems.push(`a ${res.status} has no body in the document, got ${res.body.length} bytes`);
      return problems;
    }
    const media = content[type];
    if (!media) {
      problems.push(`content type "${type}" is not one of ${Object.keys(content).join(', ')}`);
      return problems;
    }
    if (type !== 'application/json') return problems;
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch {
      problems.push('the body is not JSON');
      return problems;
    }
    const key = `${route.name} ${res.status}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(rebase(media.schema) as object);
      this.compiled.set(key, validate);
    }
    if (!validate(body))
      problems.push(
        `the body does not match the schema: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}`,
      );
    return problems;
  }
}

/**
 * Points a schema's local `$ref`s at the document registered as `openapi`, and turns
 * OpenAPI 3.0's `nullable` beside a `oneOf` (no `type` for Ajv to extend) into JSON
 * Schema's `anyOf` with null.
 */
function rebase(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (!schema || typeof schema !== 'object') return schema;
  const { nullable, ...rest } = schema as Record<string, unknown>;
  if (nullable === true && !('type' in rest)) return { anyOf: [rebase(rest), { type: 'null' }] };
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `openapi${v}` : rebase(v),
    ]),
  );
}
