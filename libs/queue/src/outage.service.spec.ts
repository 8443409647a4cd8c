import { MetricsService } from '@app/observability';
import type { RedisService } from '@app/redis';
import type { ModuleRef } from '@nestjs/core';
import { OutageService, ShuttingDownError } from './outage.service';

/** No PostgreSQL in this process; a Redis whose answers the test decides. */
function outage(redisUp: () => boolean) {
  const moduleRef = {
    get: () => {
      throw new Error('no DataSource here');
    },
  } as unknown as ModuleRef;
  const redis = {
    ping: () => (redisUp() ? Promise.resolve() : Promise.reject(new Error('down'))),
  } as unknown as RedisService;
  const metrics = new MetricsService();
  return { service: new OutageService(metrics, moduleRef, redis), metrics };
}

describe('OutageService', () => {
  it('holds every waiting job until the dependency answers, with one probe for all', async () => {
    let up = false;
    let pings = 0;
    const { service, metrics } = outage(() => {
      pings++;
      return up;
    });
    const waits = Array.from({ length: 30 }, (_, i) =>
      service.waitForDependencies('q', 0, new Error(`job ${i}`)),
    );
    await new Promise((r) => setTimeout(r, 600));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/worker_jobs_waiting_on_dependencies\{queue="q"\} 30/);
    expect(text).toMatch(/worker_dependencies_down 1/);
    // Thirty waiting jobs, a handful of pings (one loop), not thirty per round.
    expect(pings).toBeLessThan(10);
    up = true;
    await Promise.all(waits);
    expect(await metrics.registry.metrics()).toMatch(/worker_dependencies_down 0/);
  });

  it('lets every waiting job go at shutdown', async () => {
    const { service } = outage(() => false);
    const waits = Array.from({ length: 50 }, () =>
      service.waitForDependencies('q', 3, new Error('down')).catch((e: unknown) => e),
    );
    await new Promise((r) => setTimeout(r, 50));
    service.shutdown();
    const outcomes = await Promise.all(waits);
    expect(outcomes.every((o) => o instanceof ShuttingDownError)).toBe(true);
    await expect(service.waitForDependencies('q', 0, new Error('late'))).rejects.toBeInstanceOf(
      ShuttingDownError,
    );
  });
});
