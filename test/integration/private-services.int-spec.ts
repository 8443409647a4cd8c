import Redis from 'ioredis';
import { existsSync, readFileSync } from 'node:fs';
import { Client } from 'pg';
import { sleep } from '../support/fixtures';
import {
  alive,
  migratedDatabase,
  PrivatePostgres,
  PrivateRedis,
} from '../support/private-services';

async function canConnect(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('private PostgreSQL and Redis for fault tests (integration)', () => {
  jest.setTimeout(60000);

  describe('PrivatePostgres', () => {
    let pg: PrivatePostgres;
    beforeAll(async () => {
      pg = await PrivatePostgres.start();
    });
    afterAll(async () => {
      await pg?.stop();
    });

    it('keeps a committed row through an immediate (crash-like) restart on the same port; old connections fail, new ones work', async () => {
      const url = await migratedDatabase(pg, 'private_test');
      const before = new Client({ connectionString: url });
      await before.connect();
      // The project's schema is there: the migrations ran.
      const [{ n }] = (await before.query(`SELECT count(*)::int AS n FROM schema_migrations`)).rows;
      expect(n).toBeGreaterThan(0);
      await before.query(`INSERT INTO orgs (name) VALUES ('kept')`);
      const lost = new Promise<Error>((resolve) => before.once('error', resolve));

      await pg.restart({ mode: 'immediate', downMs: 300 });
      expect(pg.log()).toMatch(/database system was interrupted|automatic recovery/);

      await expect(before.query('SELECT 1')).rejects.toThrow();
      expect(await lost).toBeInstanceOf(Error);
      await before.end().catch(() => undefined);

      const after = new Client({ connectionString: pg.url('private_test') });
      await after.connect();
      try {
        const { rows } = await after.query(`SELECT name FROM orgs WHERE name = 'kept'`);
        expect(rows).toEqual([{ name: 'kept' }]);
      } finally {
        await after.end();
      }
    });

    it('a stop during a restart waits for it and leaves nothing running', async () => {
      const other = await PrivatePostgres.start();
      const restarting = other.restart({ mode: 'immediate', downMs: 300 });
      await other.stop();
      await restarting;
      expect(other.pid).toBeUndefined();
      expect(existsSync(other.dir)).toBe(false);
      await expect(canConnect(other.url())).resolves.toBe(false);
    });

    it('stop() ends the server and removes its directory', async () => {
      const other = await PrivatePostgres.start();
      const pid = Number(readFileSync(`${other.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
      expect(alive(pid)).toBe(true);
      await other.stop();
      expect(alive(pid)).toBe(false);
      expect(existsSync(other.dir)).toBe(false);
    });
  });

  describe('PrivateRedis', () => {
    let redis: PrivateRedis;
    beforeAll(async () => {
      redis = await PrivateRedis.start({ appendonly: true });
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('with AOF (everysec) keeps a key through a SIGKILL restart on the same port; old connections fail, new ones work', async () => {
      // No reconnection and no offline queue: a command on the old connection fails.
      const before = new Redis(redis.url(), {
        retryStrategy: () => null,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        lazyConnect: true,
      });
      before.on('error', () => undefined);
      await before.connect();
      await before.set('kept', 'yes');
      // appendfsync everysec: written to disk within a second.
      await sleep(1100);

      await redis.restart({ kill: 'SIGKILL', downMs: 200 });

      await expect(before.get('kept')).rejects.toThrow();
      before.disconnect();

      const after = new Redis(redis.url(), { maxRetriesPerRequest: 1 });
      try {
        expect(await after.get('kept')).toBe('yes');
      } finally {
        after.disconnect();
      }
    });

    it('a stop during a restart waits for it and leaves nothing running', async () => {
      const other = await PrivateRedis.start();
      const restarting = other.restart({ downMs: 300 });
      await other.stop();
      await restarting;
      expect(other.pid).toBeUndefined();
      expect(existsSync(other.dir)).toBe(false);
      const probe = new Redis(other.url(), {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      probe.on('error', () => undefined);
      await expect(probe.connect()).rejects.toThrow();
      probe.disconnect();
    });

    it('without AOF, a SIGKILL restart starts empty', async () => {
      const plain = await PrivateRedis.start();
      try {
        const c = new Redis(plain.url(), { maxRetriesPerRequest: 1 });
        await c.set('gone', '1');
        c.disconnect();
        await plain.restart({ kill: 'SIGKILL' });
        const d = new Redis(plain.url(), { maxRetriesPerRequest: 1 });
        try {
          expect(await d.get('gone')).toBeNull();
        } finally {
          d.disconnect();
        }
      } finally {
        await plain.stop();
      }
    });
  });
});
