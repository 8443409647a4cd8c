import { AppConfig, loadConfig } from '@app/config';
import { classifyFailure } from '@app/common';
import {
  consumerFor,
  FAIL_FAST_COMMAND_TIMEOUT_MS,
  InjectProducer,
  JobHandlers,
  Producer,
  ProducersModule,
  QueueHandlerClass,
  QueueName,
  redisOptionsFromUrl,
} from '@app/queue';
import { testConfigOverrides } from '@app/testing';
import { DynamicModule, INestApplicationContext, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Job, Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { sleep, until } from '../support/fixtures';
import { TcpProxy } from '../support/tcp-proxy';
import { queueTestModules } from '../support/worker';

const QUEUE = `reconnect-${randomUUID().slice(0, 8)}` as QueueName;

/** Settles with what the promise did, or 'pending' if it did neither within `ms`. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<unknown> {
  const pending = Symbol('pending');
  const outcome = await Promise.race([
    p.then(
      () => 'resolved',
      (err: Error) => err,
    ),
    sleep(ms).then(() => pending),
  ]);
  return outcome === pending ? 'pending' : outcome;
}

/** Each job waits for the test's gate, then writes to Redis through its worker's connection. */
@Injectable()
class GatedHandler {
  static readonly queue = QUEUE;
  static gate: Promise<void> = Promise.resolve();
  static started?: () => void;
  static finished?: (outcome: unknown) => void;
  readonly jobs = {
    gated: async (job: Job) => {
      GatedHandler.started?.();
      await GatedHandler.gate;
      try {
        await job.updateProgress(50);
        GatedHandler.finished?.('resolved');
      } catch (err) {
        GatedHandler.finished?.(err);
      }
    },
  } as unknown as JobHandlers<QueueName>;
}

/** The fail-fast producer of the test queue, as the api and the fan-out hold theirs. */
@Injectable()
class Holder {
  constructor(@InjectProducer(QUEUE) readonly producer: Producer<QueueName>) {}
}

@Module({})
class ReconnectTestModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ReconnectTestModule,
      imports: [
        ...queueTestModules(config),
        ProducersModule.forQueues({ name: QUEUE, failFast: true }),
      ],
      providers: [
        Holder,
        GatedHandler,
        consumerFor(GatedHandler as QueueHandlerClass, {
          concurrency: 1,
          lockDurationMs: 30000,
          prefix: `${config.redis.prefix}:bull`,
          connection: redisOptionsFromUrl(config.redis.url),
        }),
      ],
    };
  }
}

/**
 * A Redis connection dropped with commands in flight (a failover, a reset) must never
 * leave them unanswered: ioredis resends them on the new connection, or, where resending
 * is off (a fail-fast producer: the api already answered 503), they fail by a deadline.
 * A command left pending forever stalls a consumer for good (its jobs sit waiting) and
 * its shutdown never ends.
 */
describe('Redis reconnects with commands in flight (integration)', () => {
  jest.setTimeout(60000);

  let proxy: TcpProxy;
  let app: INestApplicationContext;
  let direct: Queue;

  beforeAll(async () => {
    const base = loadConfig(testConfigOverrides());
    const redis0 = new URL(base.redis.url);
    proxy = await TcpProxy.start({ host: redis0.hostname, port: Number(redis0.port || 6379) });
    const config = loadConfig(testConfigOverrides({ REDIS_URL: proxy.url(base.redis.url) }));
    app = await NestFactory.createApplicationContext(ReconnectTestModule.forRoot(config), {
      logger: false,
    });
    await app.init();
    // Around the proxy: the test's own view stays up whatever the proxy does.
    direct = new Queue(QUEUE, {
      connection: redisOptionsFromUrl(base.redis.url),
      prefix: `${base.redis.prefix}:bull`,
    });
  });

  afterEach(() => proxy.setMode('pass'));

  afterAll(async () => {
    proxy?.setMode('pass');
    await app?.close();
    await direct?.obliterate({ force: true });
    await direct?.close();
    await proxy?.close();
  });

  /** Holds what crosses the proxy, lets `inFlight` write, then resets every connection. */
  async function cutWhileInFlight(inFlight: () => void): Promise<void> {
    proxy.setMode('pause');
    inFlight();
    await sleep(300);
    proxy.setMode('reset');
    await sleep(300);
    proxy.setMode('pass');
  }

  it("a consumer's command cut off by a reconnect is answered, and the consumer goes on", async () => {
    let open!: () => void;
    GatedHandler.gate = new Promise((r) => (open = r));
    const started = new Promise<void>((r) => (GatedHandler.started = r));
    const finished = new Promise<unknown>((r) => (GatedHandler.finished = r));
    const first = await direct.add('gated', {});
    await started;

    await cutWhileInFlight(open);

    expect(await settledWithin(finished, 20000)).toBe('resolved');
    // And it still takes jobs: the next one runs to the end.
    GatedHandler.gate = Promise.resolve();
    const next = new Promise<unknown>((r) => (GatedHandler.finished = r));
    await direct.add('gated', {});
    expect(await settledWithin(next, 20000)).toBe('resolved');
    await until('the first job to complete', () => first.getState(), {
      done: (state) => state === 'completed',
    });
  });

  it("a fail-fast producer's add cut off by a reconnect fails by its deadline, as an outage", async () => {
    const { producer } = app.get(Holder);
    GatedHandler.gate = Promise.resolve();
    // Connected (after the previous test's cut): the add below is sent, not refused.
    await until(
      'the producer to be connected again',
      () =>
        producer.queue.add('gated', {}).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 10000, everyMs: 200 },
    );
    let add!: Promise<unknown>;
    const started = Date.now();
    await cutWhileInFlight(() => {
      add = producer.queue.add('gated', { cut: true });
    });

    const outcome = await settledWithin(add, FAIL_FAST_COMMAND_TIMEOUT_MS + 5000);
    expect(outcome).toBeInstanceOf(Error);
    // Lost with the connection and failed by its deadline, not refused up front.
    expect((outcome as Error).message).toMatch(/Command timed out/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(FAIL_FAST_COMMAND_TIMEOUT_MS - 100);
    expect(classifyFailure(outcome)).toBe('outage');
    // The connection itself is fine again: the next add goes through.
    await expect(producer.queue.add('gated', {})).resolves.toBeDefined();
  });
});
