import { isolatedRun, IsolatedRun } from '@app/testing';
import { lookup } from 'node:dns/promises';
import { connect, createServer, Server } from 'node:net';
import { hostname } from 'node:os';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from '../support/api';
import { clock, rule, send, until } from '../support/fixtures';
import { RunningWorker, startWorker } from '../support/worker';

type Json = Record<string, any>;
const at = clock(Date.UTC(2025, 10, 1));

/**
 * A destination a webhook must never reach with WEBHOOK_ALLOW_PRIVATE_NETWORKS off: the
 * host as written in the URL, and the class the refusal names (`name`: a hostname, which
 * only the lookup at connect time can judge).
 */
type Row = [host: string, cls: string];

const LITERALS: Row[] = [
  ['127.0.0.1', 'loopback'],
  ['127.0.0.2', 'loopback'],
  ['127.1', 'loopback'],
  ['2130706433', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['0x7f.1', 'loopback'],
  ['0177.0.0.1', 'loopback'],
  ['127.0.0.1.', 'loopback'],
  ['[::1]', 'loopback'],
  ['[0:0:0:0:0:0:0:1]', 'loopback'],
  ['[::ffff:127.0.0.1]', 'loopback'],
  ['[::ffff:7f00:1]', 'loopback'],
  ['[::127.0.0.1]', 'loopback'],
  ['[64:ff9b::7f00:1]', 'loopback'],
  ['[2002:7f00:1::]', 'loopback'],
  ['0.0.0.0', 'unspecified'],
  ['0', 'unspecified'],
  ['[::]', 'unspecified'],
  ['169.254.169.254', 'metadata'],
  ['169.254.170.2', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['168.63.129.16', 'metadata'],
  ['[fd00:ec2::254]', 'metadata'],
  ['[fd20:ce::254]', 'metadata'],
  ['[::ffff:169.254.169.254]', 'metadata'],
  ['[fe80::a9fe:a9fe]', 'metadata'],
  ['169.254.1.1', 'link-local'],
  ['[fe80::1]', 'link-local'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['192.168.1.1', 'private'],
  ['[::ffff:10.0.0.1]', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['[fd00::1]', 'unique-local'],
  ['224.0.0.1', 'multicast'],
  ['[ff02::1]', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  // Documentation ranges (RFC 5737, RFC 3849): never a subscriber; a host's own address on
  // some networks (this test machine's is 192.0.2.2).
  ['192.0.2.2', 'reserved'],
  ['198.51.100.7', 'reserved'],
  ['203.0.113.9', 'reserved'],
  ['[2001:db8::1]', 'reserved'],
];

/** Classes WEBHOOK_ALLOW_PRIVATE_NETWORKS opens: rows of these can be saved with it on. */
const FLAG_OPENS = ['loopback', 'private', 'cgnat', 'unique-local'];

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Loopback or private by its text alone (no classifier of ours), for the host name row. */
const LOCAL_TEXT = /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|f[cd]|fe[89ab])/i;

/**
 * The SSRF table through the real delivery path: webhooks whose URLs the policy refuses,
 * one alert, and the worker's attempts. Creation refuses every literal (422 naming the url
 * and the class); a name passes creation and is refused when it resolves. Rows that exist
 * anyway (saved while WEBHOOK_ALLOW_PRIVATE_NETWORKS was on, or before a range was
 * refused) are refused by the worker, each attempt recorded with the reason, and no
 * connection reaches the listener every URL points at (bound on every local address).
 */
describe('SSRF through the delivery path (e2e)', () => {
  jest.setTimeout(60000);

  let own: IsolatedRun;
  let api: RunningApi;
  let lenient: RunningApi;
  let worker: RunningWorker;
  let db: DataSource;
  let listener: Server;
  let port: number;
  let ipv6: boolean;
  const accepted: string[] = [];
  let names: Row[] = [];

  beforeAll(async () => {
    own = await isolatedRun('ssrf');
    const env = {
      ...own.env,
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
      // Two attempts each, so a retry goes through the check again.
      WEBHOOK_RETRY_SCHEDULE: '0.1',
      QUOTA_WEBHOOKS_PER_PROJECT: '500',
      // Spellings of one address share a circuit: it must not hold deliveries back here.
      WEBHOOK_CIRCUIT_FAILURE_THRESHOLD: '1000',
      // One project holds every webhook here: let its deliveries run side by side.
      WEBHOOK_PROJECT_CONCURRENCY: '16',
    };
    api = await startApi(env);
    lenient = await startApi({ ...env, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
    worker = await startWorker(env);
    db = api.app.get(DataSource);
    // Every local address (IPv6 and IPv4 where the machine has IPv6): any connection the
    // worker makes to this machine lands here.
    listener = createServer((s) => {
      accepted.push(s.remoteAddress ?? '?');
      s.destroy();
    });
    const listen = (host: string) =>
      new Promise<void>((resolve, reject) => {
        listener.once('error', reject).listen(0, host, () => {
          listener.off('error', reject);
          resolve();
        });
      });
    ipv6 = await listen('::').then(
      () => true,
      () => listen('0.0.0.0').then(() => false),
    );
    port = (listener.address() as { port: number }).port;
    // This machine's name, where it resolves to loopback or private addresses only.
    const me = hostname();
    const addresses = await lookup(me, { all: true }).catch(() => []);
    if (addresses.length > 0 && addresses.every((a) => LOCAL_TEXT.test(a.address)))
      names = [[me, 'name']];
  });
  afterAll(async () => {
    await worker?.close();
    await lenient?.close();
    await api?.close();
    if (listener) await new Promise((r) => listener.close(r));
    await own?.drop();
  });

  const url = (host: string) => `http://${host}:${port}/hook`;
  const refusal = ([host, cls]: Row) =>
    cls === 'name'
      ? new RegExp(`^destination refused: ${escape(host)} resolves to a non-public address$`)
      : new RegExp(`^destination refused: \\S+ is a ${cls} address$`);

  it('the listener is reachable from here by the local spellings (so "no connection" means refused)', async () => {
    const local = [
      '127.0.0.1',
      '127.0.0.2',
      '0.0.0.0',
      ...(ipv6 ? ['::1', '::ffff:127.0.0.1', '::'] : []),
    ];
    for (const host of [...local, ...names.map(([h]) => h)]) {
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host, port }, () => s.end(resolve));
        s.on('error', reject);
      });
    }
    await until('the probes accepted', () => accepted.length >= local.length + names.length);
    accepted.length = 0;
  });

  it('creation refuses every literal with a 422 naming url and the class, with PATCH too', async () => {
    const p = await api.tenants.newProject();
    const placeholder = (
      await request(api.server)
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: 'https://hooks.example.com/placeholder' })
        .expect(201)
    ).body.id as string;
    const answers: Json[] = [];
    for (const row of [...LITERALS, ['localhost', 'name'] as Row, ['a.localhost', 'name'] as Row]) {
      const created = await request(api.server)
        .post(`/projects/${p.projectId}/webhooks`)
        .set(p.headers)
        .send({ url: url(row[0]) });
      const patched = await request(api.server)
        .patch(`/webhooks/${placeholder}`)
        .set(p.headers)
        .send({ url: url(row[0]) });
      for (const res of [created, patched])
        answers.push({ host: row[0], status: res.status, details: res.body.details });
    }
    expect(answers).toEqual(
      answers.map(({ host }) => ({
        host,
        status: 422,
        details: [
          {
            field: 'url',
            message: expect.stringMatching(
              refusal(LITERALS.find(([h]) => h === host) ?? [host, 'name']),
            ),
          },
        ],
      })),
    );
    // Nothing was saved but the placeholder, still as it was.
    const hooks = await request(api.server)
      .get(`/projects/${p.projectId}/webhooks`)
      .set(p.headers)
      .expect(200);
    expect(hooks.body.items.map((w: Json) => w.url)).toEqual([
      'https://hooks.example.com/placeholder',
    ]);
  });

  it('the worker refuses every such destination when an alert fires: each attempt recorded with the reason, no connection, no 5xx', async () => {
    const p = await api.tenants.newProject();
    const rows: Array<{ row: Row; how: string; id: string }> = [];
    const create = async (server: RunningApi, u: string) =>
      (
        await request(server.server)
          .post(`/projects/${p.projectId}/webhooks`)
          .set(p.headers)
          .send({ url: u, event_types: ['alert.created'] })
          .expect(201)
      ).body.id as string;

    // A name can't be judged without DNS: creation takes it.
    for (const row of names) rows.push({ row, how: 'created', id: await create(api, url(row[0])) });
    for (const row of LITERALS) {
      // Saved while the flag was on (the api normalises the URL)…
      if (FLAG_OPENS.includes(row[1]))
        rows.push({ row, how: 'flag on', id: await create(lenient, url(row[0])) });
      // …and, spelled as written, a row from before the check (never through the api).
      const id = await create(api, `https://hooks.example.com/ssrf/${rows.length}`);
      await db.query(`UPDATE webhooks SET url = $2 WHERE id = $1`, [id, url(row[0])]);
      rows.push({ row, how: 'as written', id });
    }

    await rule(api, p).expect(201);
    await send(api, p, 'd1', [9], { metric: 't', at });
    const deliveries = async () =>
      (
        await request(api.server)
          .get(`/projects/${p.projectId}/webhook-deliveries`)
          .query({ limit: 500 })
          .set(p.headers)
          .expect(200)
      ).body.items as Json[];
    // A connection to the listener ends the wait at once: that is the failure to report.
    const done = await until('every delivery failed', deliveries, {
      done: (items) =>
        accepted.length > 0 ||
        (items.length === rows.length && items.every((d) => d.status === 'failed')),
      timeoutMs: 30000,
      everyMs: 200,
    });
    expect(accepted).toEqual([]);

    const byWebhook = new Map(done.map((d) => [d.webhook_id as string, d]));
    const seen = rows.map(({ row, how, id }) => {
      const d = byWebhook.get(id)!;
      return {
        host: row[0],
        how,
        attempts: d.attempts,
        code: d.last_status_code,
        error: d.last_error,
      };
    });
    expect(seen).toEqual(
      rows.map(({ row, how }) => ({
        host: row[0],
        how,
        attempts: 2,
        code: null,
        error: expect.stringMatching(refusal(row)),
      })),
    );
    // Each attempt says so too, readable by the tenant (200, not 5xx).
    const some = byWebhook.get(rows[rows.length - 1].id)!;
    const attempts = await request(api.server)
      .get(`/webhook-deliveries/${some.id}/attempts`)
      .set(p.headers)
      .expect(200);
    expect(attempts.body.items).toEqual([
      expect.objectContaining({
        attempt: 1,
        status_code: null,
        error: expect.stringMatching(/^destination refused/),
      }),
      expect.objectContaining({
        attempt: 2,
        status_code: null,
        error: expect.stringMatching(/^destination refused/),
      }),
    ]);
    expect(accepted).toEqual([]);
  });
});
