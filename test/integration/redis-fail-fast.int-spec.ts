import { loadConfig } from '@app/config';
import { RedisClient, RedisService } from '@app/redis';
import { testConfigOverrides } from '@app/testing';
import { ConfigService } from '@nestjs/config';
import { sleep, until } from '../support/fixtures';
import { TcpProxy } from '../support/tcp-proxy';

/** How long `command` took to settle, and how. */
async function timed(command: () => Promise<unknown>): Promise<{ ms: number; failed: boolean }> {
  const started = Date.now();
  const failed = await command().then(
    () => false,
    () => true,
  );
  return { ms: Date.now() - started, failed };
}

/**
 * Our Redis connections refuse a command at once while Redis is away, once they have
 * been connected: a request or a probe that needs Redis must hear it is away, not wait
 * for the client's next reconnect attempt (200 ms after a drop, up to 2 s later on),
 * and they come back by themselves.
 */
describe('RedisService with Redis away (integration)', () => {
  jest.setTimeout(60000);
  let proxy: TcpProxy;
  let redis: RedisService;

  beforeAll(async () => {
    const base = loadConfig(testConfigOverrides());
    const target = new URL(base.redis.url);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    const config = loadConfig(testConfigOverrides({ REDIS_URL: proxy.url(base.redis.url) }));
    redis = new RedisService(new ConfigService(config));
  });
  afterEach(() => proxy.setMode('pass'));
  afterAll(async () => {
    await redis.onApplicationShutdown();
    await proxy.close();
  });

  it.each([
    ['the command client', () => redis.client],
    ['a connection of its own', () => redis.connect('fail-fast-test')],
  ])('%s fails each command at once while Redis is away, then heals', async (_, open) => {
    const client: RedisClient = open();
    await client.ping();

    proxy.setMode('reset');
    await until('the client to see the drop', async () => client.status, {
      done: (status) => status !== 'ready',
    });
    // Long enough for the reconnect delay to grow past a second.
    const outcomes: { ms: number; failed: boolean }[] = [];
    for (const ends = Date.now() + 3000; Date.now() < ends; await sleep(150))
      outcomes.push(await timed(() => client.get(redis.key('fail-fast'))));
    // Old code: three commands in those 3 s, each waiting ~1 s for a reconnect attempt.
    expect({
      commands: outcomes.length > 5,
      slowOrAnswered: outcomes.filter((o) => !o.failed || o.ms >= 100),
    }).toEqual({ commands: true, slowOrAnswered: [] });

    proxy.setMode('pass');
    await until('the client to answer again', () => timed(() => client.ping()), {
      done: (o) => !o.failed,
      timeoutMs: 10000,
      everyMs: 200,
    });
  });
});
