import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { createRedisClient } from './redis-target';

/**
 * A Redis stand-in on loopback that drops the first connection when its first PING
 * arrives (a Redis killed with a command in flight) and answers PONG on later ones, OK
 * to anything else (ioredis' CLIENT SETINFO on connecting).
 */
async function flakyServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const n = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let dropped = false;
    socket.on('data', (data) => {
      // One command per RESP array: `*<count>` at the start of a line.
      for (const command of data.toString().split(/(?:^|\r\n)(?=\*\d+\r\n)/)) {
        if (!command) continue;
        if (!/\bping\b/i.test(command)) socket.write('+OK\r\n');
        else if (n === 1 && !dropped) {
          dropped = true;
          setTimeout(() => socket.destroy(), 20);
          return;
        } else socket.write('+PONG\r\n');
      }
    });
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { server, port, connections: () => connections };
}

describe('socket timeout across a reconnect', () => {
  it('a timer armed on a connection that closed does not tear down the next one', async () => {
    const { server, port, connections } = await flakyServer();
    const client = createRedisClient(
      { cluster: false, nodes: [{ host: '127.0.0.1', port }], node: {} },
      {
        socketTimeout: 300,
        enableReadyCheck: false,
        lazyConnect: true,
        retryStrategy: () => 50,
      },
    );
    const errors: string[] = [];
    client.on('error', (err: Error) => errors.push(err.message));
    try {
      await client.connect();
      const sentAt = Date.now();
      // Sent on the first connection, which drops; answered on the second.
      await expect(client.ping()).resolves.toBe('PONG');
      expect(connections()).toBe(2);
      // Past the first connection's deadline: the second one, healthy, must be left alone.
      await new Promise((r) => setTimeout(r, Math.max(0, sentAt + 600 - Date.now())));
      await expect(client.ping()).resolves.toBe('PONG');
      expect(errors.filter((m) => /Socket timeout/.test(m))).toEqual([]);
      expect(connections()).toBe(2);
      // Each command's listeners go with its answer: none pile up on a long-lived socket.
      const stream = (client as unknown as { stream: Socket }).stream;
      const before = stream.listenerCount('close');
      for (let i = 0; i < 200; i++) await client.ping();
      expect(stream.listenerCount('close')).toBeLessThanOrEqual(before + 1);
    } finally {
      client.disconnect();
      await new Promise((r) => server.close(r));
    }
  });
});
