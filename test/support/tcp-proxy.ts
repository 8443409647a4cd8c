import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';

export type ProxyMode = 'pass' | 'reset' | 'blackhole' | 'pause';

interface Pair {
  client: Socket;
  /** Absent while a connection accepted during `pause` waits for the resume. */
  upstream?: Socket;
  clientClosed: boolean;
  upstreamClosed: boolean;
  clientError: boolean;
  upstreamError: boolean;
  /** Has been through `blackhole`: bytes were dropped, so it can never carry a protocol again. */
  corrupt: boolean;
  /** Chunks (null = end of stream) that arrived after we asked a socket to stop reading. */
  held: { to: Socket; chunk: Buffer | null }[];
}

/**
 * A TCP proxy for fault tests: put it between our processes (api, worker) and PostgreSQL
 * or Redis, then break the link the ways production breaks it. It listens on 127.0.0.1 on
 * an ephemeral port; `url()` rewrites a connection URL to point at it.
 *
 * Modes, switched at any time with `setMode()`:
 *
 * - `pass`: every accepted client socket gets its own upstream socket and bytes flow both
 *   ways (with backpressure; FIN is forwarded, so half-closes behave). If the upstream
 *   connect fails, the client socket is destroyed (the client sees a close, not a refusal).
 * - `reset`: a failover or a crashed server. On entry every open connection is torn down at
 *   once, the client side with a TCP RST (`resetAndDestroy()`, so clients see ECONNRESET
 *   rather than a polite FIN) and the upstream side destroyed. While in `reset`, new
 *   clients are accepted and reset immediately, never connected upstream. Back in `pass`,
 *   new connections work; the old ones are gone.
 * - `blackhole`: a network partition. Connections stay open but nothing crosses in either
 *   direction: whatever arrives is read and thrown away, FINs included. New clients are
 *   accepted, never connected upstream, and never get a byte. Such a connection has lost
 *   bytes, so its protocol stream is corrupt: on the next `pass` it is destroyed (the client
 *   sees a plain close, as after a partition heals and a keepalive finally fails), while new
 *   connections work. If a client goes away during the partition its upstream is destroyed
 *   too, so the proxy leaks no server-side sessions.
 * - `pause`: the network stalls. Both sides stop being read, so bytes wait in socket and
 *   kernel buffers (and, once those fill, the senders block as TCP would). New clients are
 *   accepted and held without an upstream connection; it is opened on resume, so a server
 *   sees nothing at all of a connection made during the stall. Back in `pass`, everything
 *   is delivered in order, as if nothing but time had passed.
 *
 * Bytes the proxy had already written before a switch are on the wire and still arrive.
 * From `reset` or `blackhole`, `pause` keeps what it finds: reset connections are gone and
 * black-holed ones stay corrupt (torn down on `pass`). From `pause`, `blackhole` drops what
 * was held.
 *
 * Every socket is tracked, and every one has an 'error' listener (an unhandled 'error'
 * would take down the jest worker). `close()` destroys all of them and stops listening,
 * resolving once every handle is closed; calling it again returns the same promise.
 */
export class TcpProxy {
  readonly port: number;
  private current: ProxyMode = 'pass';
  private readonly pairs = new Set<Pair>();
  private closing?: Promise<void>;

  private constructor(
    private readonly server: Server,
    private readonly target: { host: string; port: number },
  ) {
    this.port = (server.address() as AddressInfo).port;
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    // Paused on accept so nothing is read before the mode has decided what the socket is for.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject).listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const proxy = new TcpProxy(server, target);
    // Accept errors (EMFILE and the like) must not crash the test process.
    server.on('error', () => undefined);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  /** The given URL (postgres://… or redis://…) with host:port replaced by the proxy's. */
  url(targetUrl: string): string {
    const u = new URL(targetUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get mode(): ProxyMode {
    return this.current;
  }

  setMode(mode: ProxyMode): void {
    this.current = mode;
    for (const pair of [...this.pairs]) this.apply(pair);
  }

  /** Open client connections right now. */
  get connections(): number {
    let n = 0;
    for (const pair of this.pairs) if (!pair.client.destroyed) n++;
    return n;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const sockets: Socket[] = [];
      for (const pair of this.pairs) {
        sockets.push(pair.client);
        if (pair.upstream) sockets.push(pair.upstream);
      }
      for (const socket of sockets) socket.destroy();
      await Promise.all([stopped, ...sockets.map(closed)]);
      this.pairs.clear();
    })();
    return this.closing;
  }

  private accept(client: Socket): void {
    const pair: Pair = {
      client,
      clientClosed: false,
      upstreamClosed: false,
      clientError: false,
      upstreamError: false,
      corrupt: false,
      held: [],
    };
    if (this.closing) {
      client.on('error', () => undefined).destroy();
      return;
    }
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', (hadError) => {
      pair.clientClosed = true;
      pair.clientError = hadError;
      this.forget(pair);
      if (pair.corrupt) pair.upstream?.destroy();
      else if (this.current === 'pass') this.propagateClose(pair);
    });
    this.wire(pair, client, () => pair.upstream);
    this.apply(pair);
  }

  private connectUpstream(pair: Pair): void {
    const up = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    pair.upstream = up;
    up.on('error', () => undefined);
    up.on('close', (hadError) => {
      pair.upstreamClosed = true;
      pair.upstreamError = hadError;
      this.forget(pair);
      // Outside `pass` the client must not learn yet that the server went away.
      if (this.current === 'pass' && !pair.corrupt) this.propagateClose(pair);
    });
    this.wire(pair, up, () => pair.client);
  }

  /** Forwards `from`'s bytes (and its FIN) to the other side, honouring mode and backpressure. */
  private wire(pair: Pair, from: Socket, other: () => Socket | undefined): void {
    from.on('data', (chunk: Buffer) => this.deliver(pair, from, other(), chunk));
    from.on('end', () => this.deliver(pair, from, other(), null));
    from.on('drain', () => {
      const back = other();
      if (back && this.flowing(pair) && !from.writableNeedDrain) back.resume();
    });
  }

  private deliver(pair: Pair, from: Socket, to: Socket | undefined, chunk: Buffer | null): void {
    if (pair.corrupt || !to) return;
    if (!this.flowing(pair) || pair.held.length > 0) {
      // pause() stops the reads, but a chunk already read can still be emitted; keep it in order.
      pair.held.push({ to, chunk });
      from.pause();
      return;
    }
    this.write(from, to, chunk);
  }

  private write(from: Socket, to: Socket, chunk: Buffer | null): void {
    if (to.destroyed || to.writableEnded) return;
    if (chunk === null) to.end();
    else if (!to.write(chunk)) from.pause();
  }

  private flowing(pair: Pair): boolean {
    return this.current === 'pass' && !pair.corrupt;
  }

  /** Brings one connection in line with the current mode. */
  private apply(pair: Pair): void {
    const { client } = pair;
    switch (this.current) {
      case 'reset':
        if (!client.destroyed) client.resetAndDestroy();
        pair.upstream?.destroy();
        return;
      case 'blackhole':
        pair.corrupt = true;
        pair.held = [];
        // Read and discarded rather than left unread: bytes sent into a partition are lost, not
        // delayed, and must never surface once it heals.
        client.resume();
        pair.upstream?.resume();
        return;
      case 'pause':
        client.pause();
        pair.upstream?.pause();
        return;
      case 'pass': {
        if (pair.corrupt) {
          client.destroy();
          pair.upstream?.destroy();
          return;
        }
        if (!pair.upstream) {
          if (pair.clientClosed) return;
          this.connectUpstream(pair);
        }
        const up = pair.upstream!;
        const held = pair.held;
        pair.held = [];
        for (const { to, chunk } of held) this.write(to === up ? client : up, to, chunk);
        if (!up.writableNeedDrain) client.resume();
        if (!client.writableNeedDrain) up.resume();
        this.propagateClose(pair);
        return;
      }
    }
  }

  /**
   * A side that closed cleanly had sent its FIN, already forwarded, so the other side only
   * needs to finish writing; after an error there is nothing left worth waiting for.
   */
  private propagateClose(pair: Pair): void {
    const { client, upstream } = pair;
    if (!upstream) return;
    if (pair.clientClosed && !pair.upstreamClosed) {
      if (pair.clientError) upstream.destroy();
      else upstream.end();
    }
    if (pair.upstreamClosed && !pair.clientClosed) {
      if (pair.upstreamError) client.destroy();
      else client.end();
    }
  }

  private forget(pair: Pair): void {
    if (pair.clientClosed && (!pair.upstream || pair.upstreamClosed)) this.pairs.delete(pair);
  }
}

function closed(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}
