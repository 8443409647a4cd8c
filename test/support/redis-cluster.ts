import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { sleep } from './fixtures';

const run = promisify(execFile);

/**
 * A real Redis Cluster on loopback, from the machine's own `redis-server` and
 * `redis-cli`: `masters` nodes with `--cluster-enabled yes`, joined by
 * `redis-cli --cluster create` (no replicas), nothing kept on disk. Each node also
 * listens on its cluster bus port (port + 10000).
 */
export class RedisCluster {
  private constructor(
    readonly ports: number[],
    private readonly dir: string,
    private readonly children: ChildProcess[],
  ) {}

  static async start(masters = 3): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
    const ports: number[] = [];
    while (ports.length < masters) {
      const port = await clusterPort();
      if (!ports.includes(port)) ports.push(port);
    }
    const children = ports.map((port) =>
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      ),
    );
    const cluster = new RedisCluster(ports, dir, children);
    try {
      for (const port of ports) await waitForPing(port);
      await run('redis-cli', [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ]);
      for (const port of ports) await waitForClusterOk(port);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** `REDIS_URL` for this cluster: two of its nodes as seeds (either finds the rest). */
  get url(): string {
    return `redis+cluster://${this.ports
      .slice(0, 2)
      .map((p) => `127.0.0.1:${p}`)
      .join(',')}`;
  }

  /** Every key on every node (each master holds its own slots). */
  async keys(match: string): Promise<string[]> {
    const all: string[] = [];
    for (const port of this.ports) {
      const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      try {
        await node.connect();
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
          cursor = next;
          all.push(...keys);
        } while (cursor !== '0');
      } finally {
        node.disconnect();
      }
    }
    return all;
  }

  /** The port of the master serving `key`'s slot. */
  async nodeOf(key: string): Promise<number> {
    const node = new Redis({ port: this.ports[0], host: '127.0.0.1' });
    try {
      const slot = Number(await node.call('CLUSTER', 'KEYSLOT', key));
      const ranges = (await node.call('CLUSTER', 'SLOTS')) as Array<
        [number, number, [string, number]]
      >;
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!owner) throw new Error(`no node serves slot ${slot}`);
      return Number(owner[2][1]);
    } finally {
      node.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A free port whose cluster bus port (+10000) is free too. */
async function clusterPort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    // Below Linux's ephemeral range (32768 and up), bus ports included.
    const port = 12000 + Math.floor(Math.random() * 8000);
    if ((await isFree(port)) && (await isFree(port + 10000))) return port;
  }
  throw new Error('no free port pair for a cluster node');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function waitForPing(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await run('redis-cli', ['-p', String(port), 'ping']);
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`redis-server on ${port} did not start`);
}

async function waitForClusterOk(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
    if (/cluster_state:ok/.test(stdout)) return;
    await sleep(50);
  }
  throw new Error(`cluster node ${port} did not reach cluster_state:ok`);
}
