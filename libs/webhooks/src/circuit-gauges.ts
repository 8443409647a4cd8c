import { withDeadline } from '@app/common';
import { WorkerRoles } from '@app/config';
import { MetricsService } from '@app/observability';
import { RedisService } from '@app/redis';
import { Injectable } from '@nestjs/common';

/**
 * A scrape makes at most this many SCAN calls (of 1,000 keys each, of the whole keyspace:
 * a fleet past that is reported as a floor) and spends at most this long.
 */
const MAX_SCANS = 100;
const SCRAPE_DEADLINE_MS = 2000;
const STATES = ['open', 'half_open', 'closed'] as const;

/**
 * `webhook_circuits{state}`: circuits per state, read from Redis when Prometheus scrapes,
 * by the processes that deliver (role `deliver`; every replica reports the same figure:
 * `max` them). A circuit that is closed with no failures has no key, so `closed` counts
 * only those with failures since their last success. A scrape while Redis is away keeps
 * the last values.
 */
@Injectable()
export class CircuitGauges {
  constructor(metrics: MetricsService, roles: WorkerRoles, redis: RedisService) {
    if (!roles.runs('deliver', 'circuit gauge')) return;
    const count = async (): Promise<Record<string, number> | null> => {
      try {
        const counts: Record<string, number> = { open: 0, half_open: 0, closed: 0 };
        const deadline = Date.now() + SCRAPE_DEADLINE_MS;
        let scans = 0;
        // Every node of a cluster holds some of the circuits.
        for await (const { node, keys } of redis.scan(redis.key('circuit', '*'))) {
          for (const state of await Promise.all(keys.map((k) => node.hget(k, 's')))) {
            const s = state ?? 'closed';
            counts[s] = (counts[s] ?? 0) + 1;
          }
          if (++scans >= MAX_SCANS || Date.now() >= deadline) break;
        }
        return counts;
      } catch {
        return null;
      }
    };
    metrics.gauge('webhook_circuits', 'webhook circuits by state', ['state'], async function () {
      const counts = await withDeadline(count(), SCRAPE_DEADLINE_MS).catch(() => null);
      if (counts) for (const s of STATES) this.set({ state: s }, counts[s] ?? 0);
    });
  }
}
