import { adminHeaders, testRunEnv, TestProject } from '@app/testing';
import { AddressInfo, connect } from 'node:net';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';
import { readings } from '../support/fixtures';

const KB = 1024;
const MiB = 1024 * 1024;

interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  received: string;
  /** The server closed (or reset) the connection before the deadline. */
  closed: boolean;
}

/**
 * Sends `head` and `body` on a raw socket and never sends more: what a slow or lying
 * client does, which supertest can't. Settles when the server closes the connection, or
 * at the deadline with `closed: false`.
 */
function rawExchange(
  port: number,
  head: string,
  body: Buffer,
  deadlineMs: number,
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, closed });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    // A reset after the server answered and closed is still a close.
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(head.replace(/\n/g, '\r\n') + '\r\n');
    socket.write(body);
  });
}

const portOf = (api: RunningApi): number => (api.app.getHttpServer().address() as AddressInfo).port;

const events = (n: number, padding = 0) =>
  readings(n, (k) => ({ temperature: k, note: 'x'.repeat(padding) }));

/** Not JSON at all: a parser that ran would answer 400. */
const notJson = (bytes: number) => Buffer.alloc(bytes, '{');

// The raw-socket tests wait up to their own deadlines before they fail.
jest.setTimeout(30000);

describe('request body limits (e2e)', () => {
  let api: RunningApi;
  let p: TestProject;

  beforeAll(async () => {
    api = await startApi();
    await api.app.listen(0, '127.0.0.1');
    p = await api.tenants.newProject();
  });
  afterAll(() => api.close());

  describe('every route but POST /telemetry', () => {
    it('refuses a 200 KB body to POST /orgs with 413 naming 100 KB', async () => {
      const res = await request(api.server)
        .post('/orgs')
        .set(adminHeaders)
        .send({ name: 'x'.repeat(200 * KB) })
        .expect(413);
      expect(res.body).toMatchObject({ statusCode: 413, error: 'Payload Too Large' });
      expect(res.body.message).toContain('100 KB');
    });

    it('refuses a 200 KB body to PATCH /devices/{id} with 413', async () => {
      const device = await request(api.server)
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'patched' })
        .expect(201);
      const res = await request(api.server)
        .patch(`/devices/${device.body.id}`)
        .set(p.headers)
        .send({ name: 'x'.repeat(200 * KB) })
        .expect(413);
      expect(res.body.message).toContain('100 KB');
    });

    it('still takes a body under the limit', async () => {
      await request(api.server)
        .post('/orgs')
        .set(adminHeaders)
        .send({ name: `small-${Date.now()}`, padding: ' '.repeat(50 * KB) })
        .expect(422); // parsed: the unknown field is named
    });

    it('never parses a large body sent to an unknown path', async () => {
      const res = await request(api.server)
        .post('/no/such/route')
        .set('Content-Type', 'application/json')
        .send(notJson(200 * KB).toString());
      expect([404, 413]).toContain(res.status);
      expect(res.body.message).not.toMatch(/not valid JSON/);
    });
  });

  describe('POST /telemetry', () => {
    it('accepts a ~1 MB batch', async () => {
      const batch = { device_external_id: 'big', events: events(5000, 150) };
      expect(JSON.stringify(batch).length).toBeGreaterThan(MiB);
      const res = await request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .send(batch)
        .expect(202);
      expect(res.body.accepted).toBe(5000);

      // However Express matches the path, the route still reads its own (large) body.
      const spelled = await request(api.server)
        .post('/Telemetry/')
        .set(p.headers)
        .send(batch)
        .expect(202);
      expect(spelled.body.accepted).toBe(5000);
    });

    it('refuses a 9 MiB body with 413 naming 8 MiB', async () => {
      const res = await request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .send({ device_external_id: 'huge', events: events(5000, (9 * MiB) / 5000) })
        .expect(413);
      expect(res.body.message).toContain('8 MiB');
    });

    it.each(['a wrong secret', 'no key'])(
      'answers 401 to %s before reading the body',
      async (label) => {
        const headers: Record<string, string> =
          label === 'no key' ? {} : { 'X-API-Key': `${p.apiKey.split('.')[0]}.${'B'.repeat(43)}` };
        const res = await request(api.server)
          .post('/telemetry')
          .set(headers)
          .set('Content-Type', 'application/json')
          .send(notJson(MiB).toString())
          .expect(401);
        expect(res.body.statusCode).toBe(401);
        expect(res.headers.connection).toBe('close');
      },
    );

    it('answers 401 without waiting for a body that has not arrived', async () => {
      // 4 MiB announced, 64 KB sent: a server that reads first never answers.
      const { received, closed } = await rawExchange(
        portOf(api),
        [
          'POST /telemetry HTTP/1.1',
          'Host: 127.0.0.1',
          `X-API-Key: tpk_zzzzzzzzzzzz.${'A'.repeat(43)}`,
          'Content-Type: application/json',
          `Content-Length: ${4 * MiB}`,
          '',
        ].join('\n'),
        notJson(64 * KB),
        10000,
      );
      expect(received).toMatch(/^HTTP\/1\.1 401 /);
      expect(received).toMatch(/\r\nconnection: close\r\n/i);
      expect(closed).toBe(true);
    });

    it('answers 413 from Content-Length without waiting for the body', async () => {
      const { received, closed } = await rawExchange(
        portOf(api),
        [
          'POST /telemetry HTTP/1.1',
          'Host: 127.0.0.1',
          `X-API-Key: ${p.apiKey}`,
          'Content-Type: application/json',
          `Content-Length: ${64 * MiB}`,
          '',
        ].join('\n'),
        notJson(64 * KB),
        10000,
      );
      expect(received).toMatch(/^HTTP\/1\.1 413 /);
      expect(received).toContain('8 MiB');
      expect(closed).toBe(true);
    });
  });

  it('counts the rate limit before reading an ingest body', async () => {
    const limited = await startApi({
      REDIS_PREFIX: `${testRunEnv().redisPrefix}:body-rl`,
      RATE_LIMIT_INGEST_PER_MINUTE: '1',
    });
    try {
      const q = await limited.tenants.newProject();
      // Verifies the key, so that it counts in its own buckets from now on.
      await request(limited.server)
        .get(`/projects/${q.projectId}/devices`)
        .set(q.headers)
        .expect(200);
      const send = () =>
        request(limited.server)
          .post('/telemetry')
          .set(q.headers)
          .set('Content-Type', 'application/json')
          .send(notJson(MiB).toString());
      await send().expect(400); // within the limit: read, and not JSON
      const res = await send().expect(429);
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await limited.close();
    }
  });
});

interface Trickled extends RawExchange {
  /** From the first byte sent to the close (or the deadline). */
  elapsedMs: number;
  /** How many bytes of `dripped` went out before the server closed. */
  dripped: number;
}

/**
 * Sends `upfront` at once, then `dripped` one byte every `everyMs`: a client that is never
 * idle (a socket idle timeout never fires) but never finishes either. Settles when the
 * server closes the connection, or at the deadline with `closed: false`.
 */
function trickle(
  port: number,
  upfront: string,
  dripped: string,
  everyMs: number,
  deadlineMs: number,
): Promise<Trickled> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let received = '';
    let sent = 0;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      clearInterval(drip);
      socket.destroy();
      resolve({ received, closed, elapsedMs: Date.now() - started, dripped: sent });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    const drip = setInterval(() => {
      if (sent < dripped.length && socket.writable) socket.write(dripped[sent++]);
    }, everyMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    if (upfront) socket.write(upfront);
  });
}

/** A request head as a client sends it (CRLF line ends, the blank line included). */
const head = (lines: string[]): string => [...lines, '', ''].join('\r\n');

/**
 * Slow clients against the server `configureApp` sets up (what `main.ts` listens with):
 * whatever a client sends, headers end by HTTP_HEADERS_TIMEOUT_MS and a whole request by
 * HTTP_REQUEST_TIMEOUT_MS, each enforced within Node's connection sweep (1 s) of it. With
 * Node's defaults (60 s, 300 s) every one of these would still be connected at its deadline.
 */
describe('HTTP server timeouts (e2e)', () => {
  const HEADERS_MS = 1000;
  const REQUEST_MS = 4000;
  /** Node sweeps connections every second (CONNECTIONS_CHECK_MS). */
  const SWEEP_MS = 1000;
  /** Timers on a busy machine; below REQUEST_MS - HEADERS_MS - SWEEP_MS, so the two stay apart. */
  const SLACK_MS = 1500;
  let api: RunningApi;
  let p: TestProject;

  beforeAll(async () => {
    api = await startApi({
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
    });
    await api.app.listen(0, '127.0.0.1');
    p = await api.tenants.newProject();
  });
  afterAll(() => api.close());

  /** Cut by the server, answering 408 if it answered at all, within [from, to) ms. */
  const expectCut = (r: Trickled, from: number, to: number) => {
    expect({ closed: r.closed, status: r.received.slice(0, 12) || 'none' }).toEqual({
      closed: true,
      status: expect.stringMatching(/^(none|HTTP\/1\.1 408)$/),
    });
    expect(r.elapsedMs).toBeGreaterThanOrEqual(from);
    expect(r.elapsedMs).toBeLessThan(to);
  };

  it('cuts off a client trickling its headers at HTTP_HEADERS_TIMEOUT_MS', async () => {
    // A byte every 50 ms, never the blank line that ends the headers.
    const r = await trickle(
      portOf(api),
      '',
      `GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(1000)}`,
      50,
      REQUEST_MS + 5000,
    );
    expectCut(r, HEADERS_MS - 100, HEADERS_MS + SWEEP_MS + SLACK_MS);
    expect(r.dripped).toBeGreaterThan(10); // it never went quiet
  });

  it('cuts off a body that trickles or stalls at HTTP_REQUEST_TIMEOUT_MS, not at the headers timeout', async () => {
    const port = portOf(api);
    const json = (path: string, headers: string[], length: number) =>
      head([
        `POST ${path} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Content-Type: application/json',
        `Content-Length: ${length}`,
        ...headers,
      ]);
    const deadline = REQUEST_MS + 5000;
    const [orgs, telemetry, stalled] = await Promise.all([
      // An admin route, its body read by the JSON middleware before the guards.
      trickle(port, json('/orgs', [], 10000), `{"name":"${'x'.repeat(9000)}"}`, 50, deadline),
      // POST /telemetry, its body read by the route after the key is verified.
      trickle(
        port,
        json('/telemetry', [`X-API-Key: ${p.apiKey}`], 10000),
        `{"device_external_id":"slow","events":[${' '.repeat(9000)}]}`,
        50,
        deadline,
      ),
      // Four bytes, then nothing.
      trickle(port, json('/orgs', [], 1000) + '{"na', '', 50, deadline),
    ]);
    for (const r of [orgs, telemetry, stalled])
      expectCut(r, REQUEST_MS - 100, REQUEST_MS + SWEEP_MS + SLACK_MS);
    expect(orgs.dripped).toBeGreaterThan(30);
    expect(telemetry.dripped).toBeGreaterThan(30);
  });
});
