import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './fixtures';
import { freePort } from './processes';

/**
 * A real PgBouncer (Debian's `pgbouncer`, which `npm test` installs) in transaction mode
 * on a loopback port of its own, in front of the test PostgreSQL: every database name
 * passes through (`* =`), trust authentication as PostgreSQL has here. Started as the
 * `postgres` user when the tests run as root (PgBouncer refuses root).
 */
export class PgBouncer {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly output: () => string,
  ) {}

  static async start(upstream: string): Promise<PgBouncer> {
    const binary = findPgBouncer();
    const target = new URL(upstream);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
    writeFileSync(join(dir, 'users.txt'), `"${decodeURIComponent(target.username)}" ""\n`);
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${target.hostname} port=${target.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = trust',
        `auth_file = ${join(dir, 'users.txt')}`,
        'pool_mode = transaction',
        'max_client_conn = 1000',
        'default_pool_size = 20',
        'server_reset_query =',
        // After a failed server login (a database that did not exist yet), retry after 1 s,
        // not 15: `migrate` creates its database through the pooler within its 5 s timeout.
        'server_login_retry = 1',
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        '',
      ].join('\n'),
    );
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      chmodSync(dir, 0o755);
      chownSync(dir, uid, uid);
    }
    const child = spawn(
      binary,
      [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const bouncer = new PgBouncer(port, dir, child, () => output);
    for (let i = 0; i < 100 && !/listening on/.test(output); i++) {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${output}`);
      await sleep(50);
    }
    if (!/listening on/.test(output)) throw new Error(`pgbouncer did not start: ${output}`);
    return bouncer;
  }

  /** `url` with its host and port replaced by this pooler's. */
  through(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  log(): string {
    return this.output();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill('SIGINT');
      await new Promise((r) => this.child.once('exit', r));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function findPgBouncer(): string {
  for (const path of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer']) {
    try {
      execFileSync(path, ['--version']);
      return path;
    } catch {
      // next
    }
  }
  throw new Error('pgbouncer is not installed: `npm test` installs it (apt-get install pgbouncer)');
}
