import { RESPONSE_EXCERPT_LIMIT, WebhookHttpClient } from '@app/webhooks';
import { createServer as createHttpServer, Server as HttpServer } from 'node:http';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

/**
 * The delivery HTTP client against real sockets: every attempt ends by its deadline with
 * bounded memory, whatever the receiver does, and no connection is made to an address
 * the SSRF policy refuses.
 */
describe('webhook HTTP client (integration)', () => {
  const TIMEOUT = 1500;
  const servers: Array<Server | HttpServer> = [];
  const sockets = new Set<Socket>();
  let connections = 0;

  function listen(server: Server | HttpServer): Promise<number> {
    servers.push(server);
    server.on('connection', (s: Socket) => {
      connections++;
      sockets.add(s);
      s.on('error', () => undefined); // the client hanging up mid-write is the point
      s.on('close', () => sockets.delete(s));
    });
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  }
  const client = (allowPrivateNetworks = true) =>
    new WebhookHttpClient({ timeoutMs: TIMEOUT, allowPrivateNetworks });
  const post = (c: WebhookHttpClient, url: string) =>
    c.post(url, { 'content-type': 'application/json' }, '{"type":"alert.created"}');

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('records status, duration and an excerpt of a normal answer', async () => {
    const port = await listen(
      createHttpServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => res.writeHead(201, { 'retry-after': '7' }).end(`got ${body}`));
      }),
    );
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/hook`);
    c.close();
    expect(r).toMatchObject({
      statusCode: 201,
      error: null,
      responseExcerpt: 'got {"type":"alert.created"}',
      retryAfter: '7',
    });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('ends at the deadline when the receiver never answers', async () => {
    const port = await listen(createServer(() => undefined));
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(r.statusCode).toBeNull();
    expect(r.error).toBe(`no response within ${TIMEOUT} ms`);
    expect(r.durationMs).toBeGreaterThanOrEqual(TIMEOUT - 50);
    expect(r.durationMs).toBeLessThan(TIMEOUT + 1000);
  });

  it('ends at the deadline when the receiver trickles its status line', async () => {
    const port = await listen(
      createServer((socket) => {
        const line = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || i >= line.length) return clearInterval(timer);
          socket.write(line[i++]);
        }, 200);
        socket.on('close', () => clearInterval(timer));
      }),
    );
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(r.statusCode).toBeNull();
    expect(r.error).toMatch(/no response within/);
    expect(r.durationMs).toBeLessThan(TIMEOUT + 1000);
  });

  it('ends at the deadline when the body trickles; the status still counts', async () => {
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('.'), 100);
        res.on('close', () => clearInterval(timer));
      }),
    );
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(r.statusCode).toBe(200);
    expect(r.error).toBe(`response body not finished within ${TIMEOUT} ms`);
    expect(r.responseExcerpt).toMatch(/^\.+$/);
    expect(r.durationMs).toBeLessThan(TIMEOUT + 1000);
  });

  it('reads at most 64 KiB of a 10 MB answer and hangs up on the rest', async () => {
    let written = 0;
    let finished = false;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(500, { 'content-length': String(10 * 1024 * 1024) });
        const pump = (): void => {
          while (written < 10 * 1024 * 1024) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          finished = true;
          res.end();
        };
        pump();
      }),
    );
    const c = client();
    const before = process.memoryUsage().arrayBuffers;
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(r.statusCode).toBe(500);
    expect(r.responseExcerpt).toHaveLength(RESPONSE_EXCERPT_LIMIT);
    expect(r.durationMs).toBeLessThan(TIMEOUT);
    // We hung up long before the 10 MB were through (the rest sat in socket buffers at most).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(finished).toBe(false);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  it('asks for no compression and stores a binary answer without NUL bytes', async () => {
    let acceptEncoding: string | undefined;
    const port = await listen(
      createHttpServer((req, res) => {
        acceptEncoding = req.headers['accept-encoding'];
        res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('ok'));
      }),
    );
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(acceptEncoding).toBe('identity');
    expect(r.statusCode).toBe(200);
    expect(r.responseExcerpt).not.toContain('\u0000');
    expect(r.responseExcerpt!.length).toBeGreaterThan(0);
  });

  it('does not follow a redirect, even to a public address', async () => {
    let hits = 0;
    const port = await listen(
      createHttpServer((req, res) => {
        hits++;
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      }),
    );
    const c = client();
    const r = await post(c, `http://127.0.0.1:${port}/`);
    c.close();
    expect(hits).toBe(1);
    expect(r.statusCode).toBe(302);
    expect(r.error).toBe('redirect to http://169.254.169.254/latest/meta-data/ not followed');
  });

  describe('SSRF: refused destinations make no connection', () => {
    let port: number;
    beforeAll(async () => {
      port = await listen(createHttpServer((_req, res) => res.writeHead(204).end()));
    });

    it.each([
      ['127.1', 'loopback'],
      ['2130706433', 'loopback'],
      ['0x7f.1', 'loopback'],
      ['0177.0.0.1', 'loopback'],
      ['[::1]', 'loopback'],
      ['[::ffff:127.0.0.1]', 'loopback'],
      ['localhost', 'loopback'],
      ['169.254.169.254', 'metadata'],
      ['169.254.1.1', 'link-local'],
      ['100.64.0.1', 'cgnat'],
      ['10.1.2.3', 'private'],
      ['192.168.0.10', 'private'],
      ['[fd00::1]', 'unique-local'],
      ['[fe80::1]', 'link-local'],
      ['0.0.0.0', 'unspecified'],
      ['224.0.0.1', 'multicast'],
    ])('refuses http://%s (%s)', async (host, cls) => {
      const before = connections;
      const c = client(false);
      const r = await post(c, `http://${host}:${port}/`);
      c.close();
      expect(r.statusCode).toBeNull();
      // A name's answer is not shown (tenants must not learn internal addresses); a literal's class is.
      expect(r.error).toMatch(
        host === 'localhost'
          ? /^destination refused: localhost resolves to a non-public address$/
          : new RegExp(`^destination refused: .* is a ${cls} address$`),
      );
      expect(connections).toBe(before);
    });

    it.each([
      ['ftp://example.com/', 'url must be http or https'],
      ['http://user:pw@example.com/', 'url must not carry credentials'],
      ['not a url', 'url is not a valid URL'],
    ])('refuses %s', async (url, message) => {
      const c = client(false);
      const r = await post(c, url);
      c.close();
      expect(r.error).toBe(message);
    });

    it('with WEBHOOK_ALLOW_PRIVATE_NETWORKS reaches loopback, by any spelling', async () => {
      const c = client(true);
      for (const host of ['127.1', '2130706433', 'localhost', '127.0.0.1']) {
        const r = await post(c, `http://${host}:${port}/`);
        expect({ host, status: r.statusCode, error: r.error }).toEqual({
          host,
          status: 204,
          error: null,
        });
      }
      c.close();
    });

    it('with WEBHOOK_ALLOW_PRIVATE_NETWORKS still refuses link-local and metadata', async () => {
      const c = client(true);
      for (const host of [
        '169.254.169.254',
        '[fe80::1]',
        '0.0.0.0',
        '[fd00:ec2::254]',
        '[fd20:ce::254]',
        '100.100.100.200',
        '168.63.129.16',
      ]) {
        const r = await post(c, `http://${host}:${port}/`);
        expect({ host, error: r.error }).toEqual({
          host,
          error: expect.stringMatching(/^destination refused/),
        });
      }
      c.close();
    });
  });
});
