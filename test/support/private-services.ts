import { quoteIdent, runMigrations } from '@app/database';
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { sleep } from './fixtures';
import { freePort } from './processes';

/**
 * Private PostgreSQL and Redis servers for fault tests and the chaos soak: each on a
 * loopback port of its own, data in a temporary directory, so a test can crash and
 * restart them without touching the shared servers (never stop those).
 *
 * Neither leaves a process behind: `stop()` in `afterAll`, and whatever is still running
 * when this process exits (normally, by an uncaught error, or on SIGINT/SIGTERM/SIGHUP)
 * is killed synchronously then. Only a SIGKILL of this process escapes that.
 */

const run = promisify(execFile);
/** Debian's PostgreSQL 15 binaries (initdb is not on PATH there); else whatever PATH has. */
const PG_BIN = existsSync('/usr/lib/postgresql/15/bin/initdb') ? '/usr/lib/postgresql/15/bin' : '';

/** Servers not yet stopped: each one's kill-and-remove, synchronous (for the exit hook). */
const running = new Set<() => void>();
let exitHooked = false;

function killOnExit(kill: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    const killAll = () => {
      for (const k of [...running]) k();
      running.clear();
    };
    process.on('exit', killAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        killAll();
        // The only listener: behave as without one (exit by the signal's number). With
        // others (a benchmark's own cleanup), leave the exit to them.
        if (process.listenerCount(signal) === 1) process.exit(128 + signalNumber(signal));
      });
    }
  }
  running.add(kill);
  return () => running.delete(kill);
}

const pgBinary = (name: string): string => (PG_BIN ? join(PG_BIN, name) : name);

function signalNumber(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): number {
  return { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal];
}

/** Whether a process with this id is running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Busy-waits (for use in an exit handler, where nothing asynchronous runs). */
function spinUntilGone(pid: number, ms: number): void {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) Atomics.wait(new Int32Array(4), 0, 0, 10);
}

/**
 * Runs `step` after every step queued before it (restarts and stops of one server never
 * overlap: a stop during a restart waits for it, and the restart does not start the
 * server again once a stop was asked for).
 */
class Serial {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const next = this.last.then(step, step);
    this.last = next.catch(() => undefined);
    return next;
  }
}

export interface PrivatePostgresOptions {
  /** `shared_buffers` (default 32MB). */
  sharedBuffers?: string;
  /** `max_connections` (default 200). */
  maxConnections?: number;
  /** More `postgresql.conf` lines. */
  settings?: Record<string, string | number>;
}

/**
 * A PostgreSQL 15 cluster of its own: `initdb` (trust authentication, user `postgres`)
 * into a temporary directory owned by `postgres` (initdb and the server refuse root),
 * listening on 127.0.0.1 on a free port, its unix socket in that directory, `fsync` on.
 * Started and stopped with `pg_ctl` (the postmaster is not our child: pg_ctl detaches
 * it, so a Ctrl-C at the terminal does not reach it; the exit hook above does).
 */
export class PrivatePostgres {
  private postmasterPid?: number;
  private forget?: () => void;
  private stopped = false;
  private readonly steps = new Serial();

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get logFile(): string {
    return join(this.dir, 'postgres.log');
  }

  /** The postmaster's process id while it runs (its backends are its children). */
  get pid(): number | undefined {
    return this.postmasterPid !== undefined && alive(this.postmasterPid)
      ? this.postmasterPid
      : undefined;
  }

  static async start(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'private-pg-'));
    const port = await freePort();
    const pg = new PrivatePostgres(port, dir);
    pg.forget = killOnExit(() => {
      pg.killNow();
      rmSync(dir, { recursive: true, force: true });
    });
    try {
      if (process.getuid?.() === 0) {
        const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
        const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
        chownSync(dir, uid, gid);
      }
      chmodSync(dir, 0o700);
      await pg.asPostgres(pgBinary('initdb'), [
        '-D',
        pg.dataDir,
        '-U',
        'postgres',
        '--auth=trust',
        '--encoding=UTF8',
        '--locale=C',
        // Only initdb's own files skip fsync (faster start); the server runs with fsync on.
        '--no-sync',
      ]);
      const settings: Record<string, string | number> = {
        listen_addresses: `'127.0.0.1'`,
        port,
        unix_socket_directories: `'${dir}'`,
        fsync: 'on',
        synchronous_commit: 'on',
        shared_buffers: opts.sharedBuffers ?? '32MB',
        max_connections: opts.maxConnections ?? 200,
        logging_collector: 'off',
        ...opts.settings,
      };
      appendFileSync(
        join(pg.dataDir, 'postgresql.conf'),
        `\n# private-services.ts\n${Object.entries(settings)
          .map(([k, v]) => `${k} = ${v}`)
          .join('\n')}\n`,
      );
      await pg.startServer();
    } catch (err) {
      await pg.stop();
      throw err;
    }
    return pg;
  }

  /** A connection URL over TCP on loopback. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  async createDatabase(name: string): Promise<string> {
    const admin = new Client({ connectionString: this.url() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } finally {
      await admin.end();
    }
    return this.url(name);
  }

  /**
   * Stops the server (`fast`: sessions ended, a checkpoint; `immediate`: like a crash,
   * recovery from the WAL at the next start), stays down `downMs`, then starts it again
   * on the same port and waits until it answers. Open connections are gone.
   */
  restart(opts: { mode?: 'fast' | 'immediate'; downMs?: number } = {}): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('PrivatePostgres: restart after stop'));
    return this.steps.run(async () => {
      await this.stopServer(opts.mode ?? 'fast');
      if (opts.downMs) await sleep(opts.downMs);
      if (this.stopped) return;
      await this.startServer();
    });
  }

  /** The server's log so far (what pg_ctl's `-l` collected). */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Stops the server (immediate) and removes its directory; safe to call twice. */
  stop(): Promise<void> {
    if (this.stopped) return this.steps.run(async () => undefined);
    this.stopped = true;
    return this.steps.run(async () => {
      try {
        if (this.postmasterPid !== undefined && alive(this.postmasterPid))
          await this.stopServer('immediate');
      } catch {
        this.killNow();
      } finally {
        rmSync(this.dir, { recursive: true, force: true });
        this.forget?.();
      }
    });
  }

  private async startServer(): Promise<void> {
    await this.asPostgres(pgBinary('pg_ctl'), [
      'start',
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-w',
      '-t',
      '60',
    ]);
    this.postmasterPid = Number(
      readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    // pg_ctl -w asked through the socket; make sure TCP answers too.
    for (let i = 0; ; i++) {
      const probe = new Client({ connectionString: this.url(), connectionTimeoutMillis: 2000 });
      try {
        await probe.connect();
        await probe.query('SELECT 1');
        return;
      } catch (err) {
        if (i >= 100) throw err;
        await sleep(100);
      } finally {
        await probe.end().catch(() => undefined);
      }
    }
  }

  private async stopServer(mode: 'fast' | 'immediate'): Promise<void> {
    await this.asPostgres(pgBinary('pg_ctl'), [
      'stop',
      '-D',
      this.dataDir,
      '-m',
      mode,
      '-w',
      '-t',
      '60',
    ]);
    // pg_ctl returns once postmaster.pid is gone, which the postmaster removes just
    // before it exits.
    for (let i = 0; i < 500 && this.postmasterPid !== undefined && alive(this.postmasterPid); i++)
      await sleep(20);
  }

  /** SIGQUIT is PostgreSQL's immediate shutdown: it ends the backends too. */
  private killNow(): void {
    const pid = this.postmasterPid;
    if (pid === undefined || !alive(pid)) return;
    try {
      process.kill(pid, 'SIGQUIT');
      spinUntilGone(pid, 3000);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  private async asPostgres(binary: string, args: string[]): Promise<void> {
    const asRoot = process.getuid?.() === 0;
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', binary, ...args]]
      : [binary, args];
    try {
      // cwd: the postgres user may not be able to read ours.
      await run(cmd, argv, { cwd: this.dir, timeout: 120000 });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `${binary.split('/').pop()} ${args[0]} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${this.log().slice(-2000)}`,
      );
    }
  }
}

/**
 * Creates `name` on the private cluster and applies the project's migrations to it (the
 * same `runMigrations` as `npm run migration:run`); returns its URL.
 */
export async function migratedDatabase(pg: PrivatePostgres, name: string): Promise<string> {
  const url = await pg.createDatabase(name);
  await runMigrations({ url, poolSize: 2 });
  return url;
}

export interface PrivateRedisOptions {
  /** `appendonly yes` with `appendfsync everysec`: a crash loses at most the last second. */
  appendonly?: boolean;
}

/**
 * A `redis-server` of its own on a free loopback port, its files in a temporary
 * directory, no RDB snapshots (`--save ""`), `maxmemory-policy noeviction`. Restarts keep
 * the port and the directory, so with AOF the data survives even a SIGKILL.
 */
export class PrivateRedis {
  private child?: ChildProcess;
  private forget?: () => void;
  private stopped = false;
  private readonly steps = new Serial();
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly appendonly: boolean,
  ) {}

  static async start(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'private-redis-'));
    const redis = new PrivateRedis(await freePort(), dir, opts.appendonly ?? false);
    redis.forget = killOnExit(() => {
      redis.child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    try {
      await redis.startServer();
    } catch (err) {
      await redis.stop();
      throw err;
    }
    return redis;
  }

  url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  /** What the server printed (all its lives). */
  log(): string {
    return this.output;
  }

  /**
   * Kills the server (`SIGKILL`, a crash, by default; `SIGTERM` is a clean shutdown),
   * stays down `downMs`, starts it again on the same port and directory, and waits until
   * it answers PING (after loading its AOF).
   */
  restart(opts: { downMs?: number; kill?: 'SIGKILL' | 'SIGTERM' } = {}): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('PrivateRedis: restart after stop'));
    return this.steps.run(async () => {
      await this.killServer(opts.kill ?? 'SIGKILL');
      if (opts.downMs) await sleep(opts.downMs);
      if (this.stopped) return;
      await this.startServer();
    });
  }

  /** Kills the server and removes its directory; safe to call twice. */
  stop(): Promise<void> {
    if (this.stopped) return this.steps.run(async () => undefined);
    this.stopped = true;
    return this.steps.run(async () => {
      await this.killServer('SIGKILL');
      rmSync(this.dir, { recursive: true, force: true });
      this.forget?.();
    });
  }

  private async startServer(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--daemonize',
      'no',
      ...(this.appendonly
        ? ['--appendonly', 'yes', '--appendfsync', 'everysec']
        : ['--appendonly', 'no']),
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.on('error', (err) => (this.output += `spawn: ${err.message}\n`));
    this.child = child;
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`redis-server exited at start:\n${this.output.slice(-2000)}`);
      try {
        const { stdout } = await run('redis-cli', ['-p', String(this.port), 'ping']);
        // While loading its AOF it answers an error (LOADING), still exit code 0.
        if (stdout.trim() === 'PONG') return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`redis-server on ${this.port} did not answer:\n${this.output.slice(-2000)}`);
  }

  private async killServer(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}
