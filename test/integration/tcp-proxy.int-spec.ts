import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import Redis from 'ioredis';
import { Client } from 'pg';
import { until } from '../support/fixtures';
import { freePort } from '../support/processes';
import { TcpProxy } from '../support/tcp-proxy';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = 'redis://127.0.0.1:6379';
/**
 * How long "nothing arrives" is watched for. A loopback echo answers in well under a
 * millisecond, so a byte that could get through would show up long before this.
 */
const QUIET_MS = 150;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Echoes every byte back, and counts what it saw so a test can tell what got past the proxy. */
class EchoServer {
  readonly sockets = new Set<Socket>();
  accepted = 0;
  bytes = 0;
  private readonly server: Server = createServer((socket) => {
    this.accepted++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => (this.bytes += chunk.length));
    socket.on('close', () => this.sockets.delete(socket));
    socket.pipe(socket);
  });

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A client socket that records what it received and how it ended. */
class Peer {
  readonly socket: Socket;
  data = Buffer.alloc(0);
  error?: NodeJS.ErrnoException;
  ended?: { hadError: boolean; at: number };
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (chunk: Buffer) => (this.data = Buffer.concat([this.data, chunk])));
    this.socket.on('error', (err) => (this.error = err));
    this.closed = new Promise((resolve) =>
      this.socket.on('close', (hadError) => {
        this.ended = { hadError, at: Date.now() };
        resolve();
      }),
    );
  }

  get text(): string {
    return this.data.toString();
  }

  async connected(): Promise<this> {
    if (this.socket.connecting) await once(this.socket, 'connect');
    return this;
  }
}

describe('TcpProxy (integration)', () => {
  jest.setTimeout(15000);

  let proxies: TcpProxy[];
  let echo: EchoServer;
  let peers: Peer[];

  beforeEach(async () => {
    proxies = [];
    peers = [];
    echo = await new EchoServer().start();
  });

  afterEach(async () => {
    for (const peer of peers) peer.socket.destroy();
    await Promise.all(proxies.map((p) => p.close()));
    await echo.close();
  });

  const proxyTo = async (port: number) => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port });
    proxies.push(proxy);
    return proxy;
  };
  const dial = (proxy: TcpProxy) => {
    const peer = new Peer(proxy.port);
    peers.push(peer);
    return peer;
  };
  const echoes = async (peer: Peer, text: string) => {
    const before = peer.text;
    peer.socket.write(text);
    await until(`echo of ${text}`, () => peer.text === before + text);
  };

  describe('against an echo server', () => {
    it('pass: bytes flow both ways, large payloads intact', async () => {
      const proxy = await proxyTo(echo.port);
      const peer = await dial(proxy).connected();
      await echoes(peer, 'hello');
      expect(proxy.connections).toBe(1);

      // Bigger than every socket buffer on the way, so backpressure has to work.
      const payload = randomBytes(8 * 1024 * 1024);
      peer.socket.write(payload);
      await until('the payload back', () => peer.data.length === 5 + payload.length, {
        timeoutMs: 10000,
      });
      expect(peer.data.subarray(5).equals(payload)).toBe(true);
    });

    it('pass: a refused upstream connect closes the client socket', async () => {
      const proxy = await proxyTo(await freePort());
      const peer = await dial(proxy).connected();
      await peer.closed;
      expect(peer.text).toBe('');
      expect(proxy.connections).toBe(0);
    });

    it('pause: holds bytes (and new connections) and delivers them in order on pass', async () => {
      const proxy = await proxyTo(echo.port);
      const a = await dial(proxy).connected();
      await echoes(a, 'ping');

      proxy.setMode('pause');
      expect(proxy.mode).toBe('pause');
      for (const part of ['a', 'b', 'c']) a.socket.write(part);
      const b = await dial(proxy).connected();
      b.socket.write('held');
      await sleep(QUIET_MS);
      expect(a.text).toBe('ping');
      expect(b.text).toBe('');
      expect(echo.bytes).toBe(4);
      // Connections made during the stall are not opened upstream until it ends.
      expect(echo.accepted).toBe(1);
      expect(proxy.connections).toBe(2);

      proxy.setMode('pass');
      await until('held bytes', () => a.text === 'pingabc' && b.text === 'held');
      await echoes(a, 'd');
      expect(a.ended).toBeUndefined();
    });

    it('pause: a bulk transfer stalled and resumed several times arrives intact', async () => {
      const proxy = await proxyTo(echo.port);
      const peer = await dial(proxy).connected();
      const payload = randomBytes(8 * 1024 * 1024);
      peer.socket.write(payload);
      for (let i = 0; i < 3; i++) {
        await until('some progress', () => peer.data.length > (i * payload.length) / 4, {
          timeoutMs: 10000,
        });
        proxy.setMode('pause');
        await sleep(30);
        proxy.setMode('pass');
      }
      await until('the payload back', () => peer.data.length === payload.length, {
        timeoutMs: 10000,
      });
      const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      expect(digest(peer.data)).toBe(digest(payload));
    });

    it('blackhole: nothing crosses; on pass the old connections are closed and new ones work', async () => {
      const proxy = await proxyTo(echo.port);
      const a = await dial(proxy).connected();
      await echoes(a, 'ping');

      proxy.setMode('blackhole');
      a.socket.write('lost');
      const b = await dial(proxy).connected();
      b.socket.write('lost too');
      await sleep(QUIET_MS);
      expect(a.text).toBe('ping');
      expect(b.text).toBe('');
      expect(echo.bytes).toBe(4);
      expect(echo.accepted).toBe(1);
      // A partition is silent: both connections still look open to everyone.
      expect(a.ended).toBeUndefined();
      expect(b.ended).toBeUndefined();
      expect(echo.sockets.size).toBe(1);
      expect(proxy.connections).toBe(2);

      proxy.setMode('pass');
      await Promise.all([a.closed, b.closed]);
      expect(a.text).toBe('ping');
      expect(b.text).toBe('');
      await until('the upstream side closed', () => echo.sockets.size === 0);

      const c = await dial(proxy).connected();
      await echoes(c, 'again');
      await until('only the new connection left', () => proxy.connections === 1);
    });

    it('reset: open and new connections get ECONNRESET at once; pass lets new ones through', async () => {
      const proxy = await proxyTo(echo.port);
      const a = await dial(proxy).connected();
      await echoes(a, 'ping');

      const started = Date.now();
      proxy.setMode('reset');
      await a.closed;
      expect(a.error?.code).toBe('ECONNRESET');
      expect(a.ended!.hadError).toBe(true);
      expect(a.ended!.at - started).toBeLessThan(1000);
      await until('the upstream side closed', () => echo.sockets.size === 0);

      const b = dial(proxy);
      await b.closed;
      expect(b.error?.code).toBe('ECONNRESET');
      expect(b.ended!.hadError).toBe(true);
      expect(echo.accepted).toBe(1);
      expect(proxy.connections).toBe(0);

      proxy.setMode('pass');
      const c = await dial(proxy).connected();
      await echoes(c, 'again');
      expect(proxy.connections).toBe(1);
    });

    it('close() is idempotent and leaves nothing open', async () => {
      const proxy = await proxyTo(echo.port);
      const a = await dial(proxy).connected();
      await echoes(a, 'ping');
      proxy.setMode('pause');
      await dial(proxy).connected();
      await until('two connections', () => proxy.connections === 2);

      await Promise.all([proxy.close(), proxy.close()]);
      await proxy.close();
      expect(proxy.connections).toBe(0);
      await Promise.all(peers.map((p) => p.closed));
      await until('the upstream side closed', () => echo.sockets.size === 0);
      const late = dial(proxy);
      await late.closed;
      expect(late.error?.code).toBe('ECONNREFUSED');
    });
  });

  /** Settles to a value either way, so a test can look at a promise without awaiting it. */
  const outcome = <T>(promise: Promise<T>) => {
    const seen: { settled: boolean; value?: T; error?: NodeJS.ErrnoException } = {
      settled: false,
    };
    const done = promise.then(
      (value) => Object.assign(seen, { settled: true, value }),
      (error: NodeJS.ErrnoException) => Object.assign(seen, { settled: true, error }),
    );
    return Object.assign(seen, { done });
  };

  describe('against PostgreSQL (pg)', () => {
    let clients: Client[];
    let errors: NodeJS.ErrnoException[];
    beforeEach(() => {
      clients = [];
      errors = [];
    });
    afterEach(async () => {
      // end() waits for the server's goodbye, which a paused or black-holed link never brings.
      for (const proxy of proxies) proxy.setMode('pass');
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    });
    const pgClient = (proxy: TcpProxy) => {
      const c = new Client({ connectionString: proxy.url(PG_URL) });
      // Without a listener, a lost connection's 'error' would crash the jest worker.
      c.on('error', (err) => errors.push(err));
      clients.push(c);
      return c;
    };
    const selectOne = async (c: Client) => (await c.query('SELECT 1 AS one')).rows;

    it('pass works; reset errors the open client and new ones fail; pass recovers', async () => {
      const proxy = await proxyTo(5432);
      const a = pgClient(proxy);
      await a.connect();
      expect(await selectOne(a)).toEqual([{ one: 1 }]);

      const failed = once(a, 'error');
      proxy.setMode('reset');
      const [err] = (await failed) as [NodeJS.ErrnoException];
      expect(err).toMatchObject({ code: 'ECONNRESET', message: 'read ECONNRESET' });
      await expect(selectOne(a)).rejects.toThrow('not queryable');

      // The RST can beat the handshake's completion ("connect ECONNRESET") or follow it.
      await expect(pgClient(proxy).connect()).rejects.toThrow(
        /ECONNRESET|Connection terminated unexpectedly/,
      );

      proxy.setMode('pass');
      const c = pgClient(proxy);
      await c.connect();
      expect(await selectOne(c)).toEqual([{ one: 1 }]);
    });

    it('pause delays a query and a connect until pass; blackhole hangs them until pass fails them', async () => {
      const proxy = await proxyTo(5432);
      const a = pgClient(proxy);
      await a.connect();

      proxy.setMode('pause');
      const query = outcome(selectOne(a));
      const b = pgClient(proxy);
      const connecting = outcome(b.connect());
      await sleep(QUIET_MS);
      expect(query.settled || connecting.settled).toBe(false);
      proxy.setMode('pass');
      await Promise.all([query.done, connecting.done]);
      expect(query.value).toEqual([{ one: 1 }]);
      expect(connecting.error).toBeUndefined();
      expect(await selectOne(b)).toEqual([{ one: 1 }]);

      proxy.setMode('blackhole');
      const lost = outcome(selectOne(a));
      const partitioned = outcome(pgClient(proxy).connect());
      await sleep(QUIET_MS);
      // pg sets no timeout by default: only query_timeout / connectionTimeoutMillis would end
      // the wait.
      expect(lost.settled || partitioned.settled).toBe(false);
      expect(errors).toEqual([]);
      proxy.setMode('pass');
      await Promise.all([lost.done, partitioned.done]);
      expect(lost.error?.message).toBe('Connection terminated unexpectedly');
      expect(partitioned.error?.message).toBe('Connection terminated unexpectedly');

      const c = pgClient(proxy);
      await c.connect();
      expect(await selectOne(c)).toEqual([{ one: 1 }]);
    });
  });

  describe('against Redis (ioredis)', () => {
    let redis: Redis;
    let errors: NodeJS.ErrnoException[];
    let opened: Redis[];
    beforeEach(() => (opened = []));
    afterEach(() => opened.forEach((r) => r.disconnect()));
    const connectRedis = async (proxy: TcpProxy) => {
      redis = new Redis(proxy.url(REDIS_URL), {
        maxRetriesPerRequest: 1,
        retryStrategy: () => 100,
        lazyConnect: true,
      });
      opened.push(redis);
      errors = [];
      redis.on('error', (err) => errors.push(err));
      await redis.connect();
    };

    it('pass works; a command fails during reset; ioredis reconnects by itself after pass', async () => {
      const proxy = await proxyTo(6379);
      await connectRedis(proxy);
      const key = `tcp-proxy-test:${process.pid}:${Date.now()}`;
      try {
        expect(await redis.set(key, 'v', 'EX', 60)).toBe('OK');
        expect(await redis.ping()).toBe('PONG');

        proxy.setMode('reset');
        await expect(redis.ping()).rejects.toThrow('Reached the max retries per request limit');
        expect(errors[0]).toMatchObject({ code: 'ECONNRESET' });
        expect(redis.status).toBe('reconnecting');

        proxy.setMode('pass');
        const deadline = Date.now() + 3000;
        let pong: string | undefined;
        while (!pong && Date.now() < deadline) pong = await redis.ping().catch(() => undefined);
        expect(pong).toBe('PONG');
        expect(await redis.get(key)).toBe('v');
      } finally {
        await redis.del(key).catch(() => undefined);
      }
    });

    it('pause delays a command until pass; blackhole hangs it, and pass resends it on a new connection', async () => {
      const proxy = await proxyTo(6379);
      await connectRedis(proxy);

      proxy.setMode('pause');
      const stalled = outcome(redis.ping());
      await sleep(QUIET_MS);
      expect(stalled.settled).toBe(false);
      proxy.setMode('pass');
      await stalled.done;
      expect(stalled.value).toBe('PONG');

      proxy.setMode('blackhole');
      const lost = outcome(redis.ping());
      await sleep(QUIET_MS);
      // No commandTimeout, no keepalive failure yet: ioredis still thinks all is well.
      expect(lost.settled).toBe(false);
      expect(redis.status).toBe('ready');
      const reconnected = once(redis, 'ready');
      proxy.setMode('pass');
      await reconnected;
      // The close was a clean FIN, so no 'error'; the unanswered PING went out again.
      await lost.done;
      expect(lost.value).toBe('PONG');
      expect(errors).toEqual([]);
    });
  });
});
