import { classifyFailure } from '@app/common';
import { buildDataSourceOptions } from '@app/database';
import { redisOptionsFromUrl } from '@app/queue';
import { testRunEnv } from '@app/testing';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * A network partition (the old primary's address gone dark, a switch dropping packets)
 * refuses nothing: without a deadline of our own a query waits on TCP retransmissions for
 * ~15 minutes, so a worker job neither finishes nor waits out the outage, and an api
 * request hangs. Our connections are dropped when the server has been silent too long,
 * and that failure reads as an outage.
 */
describe('network partitions (integration)', () => {
  jest.setTimeout(60000);
  const run = testRunEnv();

  it('drops a PostgreSQL connection the server leaves silent, as an outage', async () => {
    const target = new URL(run.databaseUrl);
    const proxy = await TcpProxy.start({
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    // A statement timeout of 1 s: the connection may be silent for 15 s (the floor).
    const db = new DataSource(
      buildDataSourceOptions(
        { url: proxy.url(run.databaseUrl), poolSize: 1, statementTimeoutMs: 1000 },
        'partition-test',
      ),
    );
    await db.initialize();
    try {
      await db.query('SELECT 1'); // the pooled connection is warm, as in a busy worker
      proxy.setMode('blackhole');
      const started = Date.now();
      const outcome = await Promise.race([
        db.query('SELECT 1').then(
          () => 'answered',
          (err: unknown) => err,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 30000)),
      ]);
      expect(outcome).toBeInstanceOf(Error);
      expect(classifyFailure(outcome)).toBe('outage');
      expect(Date.now() - started).toBeGreaterThanOrEqual(14000);
      proxy.setMode('pass');
      await expect(db.query('SELECT 1 AS one')).resolves.toEqual([{ one: 1 }]);
    } finally {
      proxy.setMode('pass');
      await db.destroy().catch(() => undefined);
      await proxy.close();
    }
  });

  it('drops a Redis connection that waits too long for an answer, as an outage', async () => {
    const target = new URL(run.redisUrl);
    const proxy = await TcpProxy.start({
      host: target.hostname,
      port: Number(target.port || 6379),
    });
    // Our BullMQ connections wait 30 s; the mechanism is the same with 2 s.
    const options = redisOptionsFromUrl(proxy.url(run.redisUrl));
    expect(options.socketTimeout).toBe(30000);
    const redis = new Redis({
      ...options,
      socketTimeout: 2000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 200,
    });
    redis.on('error', () => undefined);
    try {
      await redis.ping();
      proxy.setMode('blackhole');
      const outcome = await Promise.race([
        redis.ping().then(
          () => 'answered',
          (err: unknown) => err,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 15000)),
      ]);
      expect(outcome).toBeInstanceOf(Error);
      expect(classifyFailure(outcome)).toBe('outage');
      proxy.setMode('pass');
      let pong: string | undefined;
      for (let i = 0; i < 50 && pong !== 'PONG'; i++) {
        pong = await redis.ping().catch(() => undefined);
        if (pong !== 'PONG') await new Promise((r) => setTimeout(r, 100));
      }
      expect(pong).toBe('PONG');
    } finally {
      proxy.setMode('pass');
      redis.disconnect();
      await proxy.close();
    }
  });
});
