import { createRedisClient, parseRedisUrl, scanKeys } from '@app/redis';
import { isolatedRun, IsolatedRun, testRunEnv } from '@app/testing';
import { parseKeyRing, WebhookSecretCodec } from '@app/webhooks';
import bcrypt from 'bcryptjs';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { Webhook } from 'standardwebhooks';
import { at, HOT_RULE, until } from '../support/fixtures';
import { appEnv, exited, freePort, spawnApp, waitFor } from '../support/processes';
import { TestReceiver } from '../support/subscriber';

type Json = Record<string, any>;

/** The server's own major version of pg_dump where Debian keeps it (an older one refuses), else PATH's. */
const pgDumpFor = (serverVersionNum: number): string => {
  const own = `/usr/lib/postgresql/${Math.floor(serverVersionNum / 10000)}/bin/pg_dump`;
  return existsSync(own) ? own : 'pg_dump';
};

/**
 * The real api and worker (`main.ts`, as child processes) at LOG_LEVEL=trace, on a
 * database and Redis prefix of this file's own, through a full tenant's life: org and
 * project with the admin token, a key of each scope, a rule, a webhook, readings, an
 * alert, signed deliveries, a failed one, a secret rotation, a test event, a revoked key
 * and credentials sent where they don't belong. Then: no API key, no API key secret, no
 * webhook secret (nor its key bytes in any encoding), no admin token and no at-rest key
 * in any log line of either process, in a `pg_dump` of the database, or in any Redis key
 * of the run; the database holds keys as bcrypt hashes and webhook secrets sealed, each
 * checked against the secret it stands for.
 */
describe('secrets in logs, dumps and Redis (integration)', () => {
  jest.setTimeout(120000);

  const adminToken = `adm_${randomBytes(24).toString('base64url')}`;
  const sealKey = randomBytes(32);
  let own: IsolatedRun;
  let api: ReturnType<typeof spawnApp>;
  let worker: ReturnType<typeof spawnApp>;
  let receiver: TestReceiver;
  let base: string;

  beforeAll(async () => {
    own = await isolatedRun('secrets_logs');
    receiver = await new TestReceiver().start();
    const [apiPort, workerPort] = [await freePort(), await freePort()];
    const env = appEnv({
      ...own.env,
      LOG_LEVEL: 'trace',
      LOG_FORMAT: 'json',
      ADMIN_TOKEN: adminToken,
      WEBHOOK_SECRET_KEYS: `k1:${sealKey.toString('base64')}`,
      PORT: String(apiPort),
      WORKER_PORT: String(workerPort),
    });
    api = spawnApp('api', env);
    worker = spawnApp('worker', env);
    base = `http://127.0.0.1:${apiPort}`;
    await waitFor(`${base}/health/ready`, 200, 60000);
    await waitFor(`http://127.0.0.1:${workerPort}/health/ready`, 200, 60000);
  });
  afterAll(async () => {
    for (const child of [api, worker]) {
      if (!child) continue;
      child.kill('SIGTERM');
      await exited(child);
    }
    await receiver?.close();
    await own?.drop();
  });

  /** One request to the api child; the status is the caller's to check. */
  async function call(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: unknown,
  ): Promise<{ status: number; body: Json; text: string }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {}, text };
  }
  const expectStatus = async (p: ReturnType<typeof call>, status: number) => {
    const res = await p;
    expect({ status: res.status, body: res.body }).toMatchObject({ status });
    return res;
  };

  it('no secret in any log line, in pg_dump or in Redis; keys hashed, webhook secrets sealed', async () => {
    const admin = { Authorization: `Bearer ${adminToken}` };
    const org = (await expectStatus(call('POST', '/orgs', admin, { name: 'secrets-org' }), 201))
      .body;
    const project = (
      await expectStatus(
        call('POST', `/orgs/${org.id}/projects`, admin, { name: 'secrets-project' }),
        201,
      )
    ).body;
    const pid = project.id as string;
    const newKey = async (scopes?: string[]) =>
      (
        await expectStatus(
          call('POST', `/projects/${pid}/api-keys`, admin, {
            name: 'k',
            ...(scopes && { scopes }),
          }),
          201,
        )
      ).body as { id: string; key: string; prefix: string };
    const keys = {
      ingest: await newKey(['ingest']),
      read: await newKey(['read']),
      manage: await newKey(['manage']),
      all: await newKey(),
      revoked: await newKey(),
    };
    const as = (k: { key: string }) => ({ 'X-API-Key': k.key });

    // A rule, a webhook that answers 204 and one that answers 400 (failed for good).
    receiver.respond = (r) => (r.path.endsWith('/broken') ? { status: 400 } : { status: 204 });
    await expectStatus(call('POST', `/projects/${pid}/rules`, as(keys.manage), HOT_RULE), 201);
    const hook = (
      await expectStatus(
        call('POST', `/projects/${pid}/webhooks`, as(keys.manage), { url: receiver.url }),
        201,
      )
    ).body as { id: string; secret: string };
    const broken = (
      await expectStatus(
        call('POST', `/projects/${pid}/webhooks`, as(keys.all), {
          url: `${receiver.url}/broken`,
        }),
        201,
      )
    ).body as { id: string; secret: string };
    expect(hook.secret).toMatch(/^whsec_/);

    // Readings: an alert opens, both webhooks are sent it.
    await expectStatus(
      call('POST', '/telemetry', as(keys.ingest), {
        device_external_id: 'd1',
        events: [{ ts: at(0), data: { t: 9 } }],
      }),
      202,
    );
    const delivered = (type: string) =>
      until(
        `a ${type} delivery`,
        () =>
          receiver.received.find(
            (r) => r.path === '/hooks' && r.endedAt && JSON.parse(r.body).type === type,
          ),
        { timeoutMs: 20000 },
      );
    const signed = (await delivered('alert.created'))!;
    expect(() => new Webhook(hook.secret).verify(signed.body, signed.headers)).not.toThrow();

    // Rotation: the new secret and the old one both sign the test event.
    const rotated = (
      await expectStatus(
        call('POST', `/webhooks/${hook.id}/rotate-secret`, as(keys.manage), {}),
        200,
      )
    ).body as { secret: string };
    await expectStatus(call('POST', `/webhooks/${hook.id}/test`, as(keys.manage)), 202);
    const test = (await delivered('webhook.test'))!;
    expect(() => new Webhook(rotated.secret).verify(test.body, test.headers)).not.toThrow();
    expect(() => new Webhook(hook.secret).verify(test.body, test.headers)).not.toThrow();

    // Reads with the read key; the broken webhook's delivery fails for good (logged).
    await until(
      'the broken delivery failed for good',
      async () =>
        (await call('GET', `/projects/${pid}/webhook-deliveries`, as(keys.read))).body.items?.find(
          (d: Json) => d.webhook_id === broken.id,
        )?.status,
      { done: (s) => s === 'failed', timeoutMs: 20000, everyMs: 200 },
    );
    for (const path of [
      `/projects/${pid}/alerts`,
      `/webhooks/${hook.id}`,
      `/projects/${pid}/webhooks`,
    ])
      expect((await expectStatus(call('GET', path, as(keys.read)), 200)).text).not.toContain(
        'whsec_',
      );
    expect(
      (await expectStatus(call('GET', `/projects/${pid}/api-keys`, admin), 200)).text,
    ).not.toContain(keys.all.key.split('.')[1]);

    // Credentials where they don't belong, a key of the wrong scope, a revoked key.
    await expectStatus(
      call('GET', `/orgs/${org.id}`, { Authorization: `Bearer ${keys.all.key}` }),
      401,
    );
    await expectStatus(call('GET', `/orgs/${org.id}`, { 'X-API-Key': adminToken }), 401);
    await expectStatus(call('GET', `/projects/${pid}/alerts`, { 'X-API-Key': adminToken }), 401);
    await expectStatus(
      call('GET', `/projects/${pid}/alerts`, { Authorization: `Bearer ${keys.read.key}` }),
      401,
    );
    await expectStatus(call('POST', `/projects/${pid}/rules`, as(keys.read), HOT_RULE), 403);
    await expectStatus(call('DELETE', `/projects/${pid}/api-keys/${keys.revoked.id}`, admin), 204);
    await expectStatus(call('GET', `/projects/${pid}/alerts`, as(keys.revoked)), 401);

    // What must appear nowhere, in every encoding a log line or a row could carry it.
    const whsec = (s: string) => {
      const bytes = Buffer.from(s.slice('whsec_'.length), 'base64');
      return [s, s.slice('whsec_'.length), bytes.toString('base64url'), bytes.toString('hex')];
    };
    const secrets: Record<string, string[]> = {
      'admin token': [adminToken],
      'at-rest key': [
        sealKey.toString('base64'),
        sealKey.toString('base64url'),
        sealKey.toString('hex'),
      ],
      ...Object.fromEntries(
        Object.entries(keys).map(([scope, k]) => [
          `${scope} API key`,
          [k.key, k.key.split('.')[1]],
        ]),
      ),
      'webhook secret': whsec(hook.secret),
      'rotated webhook secret': whsec(rotated.secret),
      'broken webhook secret': whsec(broken.secret),
    };
    const found = (text: string) =>
      Object.entries(secrets).flatMap(([what, forms]) =>
        forms.filter((f) => text.includes(f)).map((f) => `${what} (${f.slice(0, 10)}…)`),
      );

    // Logs: every line of both processes, shutdown included.
    for (const child of [api, worker]) {
      child.kill('SIGTERM');
      await exited(child);
    }
    const logs = { api: api.output(), worker: worker.output() };
    const leaks = Object.entries(logs).flatMap(([process, text]) =>
      text
        .split('\n')
        .flatMap((line, i) => found(line).map((what) => `${process} line ${i + 1}: ${what}`)),
    );
    expect(leaks).toEqual([]);
    // The log is the real one: request lines of the secret-bearing answers, the worker's lines.
    expect(logs.api).toContain(`"url":"/projects/${pid}/api-keys"`);
    expect(logs.api).toContain(`"url":"/webhooks/${hook.id}/rotate-secret"`);
    expect(logs.api).toContain('"authorization":"[redacted]"');
    expect(logs.api).toContain('"x-api-key":"[redacted]"');
    expect(logs.worker).toContain('"msg":"alert opened"');
    expect(logs.worker).toContain('"msg":"delivery failed for good"');

    // pg_dump of the whole database, schema and data.
    const db = new Client({ connectionString: own.env.DATABASE_URL });
    await db.connect();
    try {
      const [{ server_version_num: version }] = (await db.query(`SHOW server_version_num`)).rows;
      const { stdout: dump } = await promisify(execFile)(
        pgDumpFor(Number(version)),
        ['--no-owner', '--dbname', own.env.DATABASE_URL!],
        { maxBuffer: 256 * 1024 * 1024 },
      );
      // The dump is of this database: the rows that stand for the secrets are in it.
      for (const k of Object.values(keys)) expect(dump).toContain(k.prefix);
      expect(dump).toContain(hook.id);
      expect(found(dump)).toEqual([]);

      // What stands for them: bcrypt hashes of the secret halves, values sealed under k1.
      const rows = (
        await db.query<{ prefix: string; secret_hash: string }>(
          `SELECT prefix, secret_hash FROM api_keys WHERE project_id = $1`,
          [pid],
        )
      ).rows;
      expect(rows).toHaveLength(Object.keys(keys).length);
      for (const k of Object.values(keys)) {
        const row = rows.find((r) => r.prefix === k.prefix)!;
        expect(row.secret_hash).toMatch(/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/);
        expect(await bcrypt.compare(k.key.split('.')[1], row.secret_hash)).toBe(true);
      }
      const codec = new WebhookSecretCodec(parseKeyRing(`k1:${sealKey.toString('base64')}`, ''));
      const [stored] = (
        await db.query<{ secret: string; previous_secret: string }>(
          `SELECT secret, previous_secret FROM webhooks WHERE id = $1`,
          [hook.id],
        )
      ).rows;
      expect(stored.secret).toMatch(/^v1:k1:[A-Za-z0-9_-]+$/);
      expect(stored.previous_secret).toMatch(/^v1:k1:[A-Za-z0-9_-]+$/);
      expect(codec.open(hook.id, stored.secret)).toBe(rotated.secret);
      expect(codec.open(hook.id, stored.previous_secret)).toBe(hook.secret);
    } finally {
      await db.end();
    }

    // Redis: every key of this file's prefix (queues, jobs, counters, circuits), every value.
    const redis = createRedisClient(parseRedisUrl(testRunEnv().redisUrl));
    try {
      let values = '';
      let count = 0;
      for await (const { node, keys: batch } of scanKeys(redis, `*${own.env.REDIS_PREFIX}:*`)) {
        for (const key of batch) {
          count++;
          values += `${key}\n${JSON.stringify(await readAny(node, key))}\n`;
        }
      }
      expect(count).toBeGreaterThan(0);
      expect(values).toContain(pid);
      expect(found(values)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

/** A Redis value whatever its type, as something a string search can read. */
async function readAny(node: import('ioredis').Redis, key: string): Promise<unknown> {
  switch (await node.type(key)) {
    case 'string':
      return node.get(key);
    case 'hash':
      return node.hgetall(key);
    case 'list':
      return node.lrange(key, 0, -1);
    case 'set':
      return node.smembers(key);
    case 'zset':
      return node.zrange(key, 0, -1);
    case 'stream':
      return node.xrange(key, '-', '+');
    default:
      return null;
  }
}
