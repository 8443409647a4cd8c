import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One Prometheus registry per process (not prom-client's global one, so several app
 * instances in one test process don't collide). Feature libs register their own metrics
 * on {@link registry}.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = this.histogram(
      'http_request_duration_seconds',
      'HTTP request duration by route pattern',
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['method', 'route', 'status_code'],
    );
  }

  /** A counter on this process's registry. */
  counter<L extends string = never>(name: string, help: string, labelNames: L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * A gauge on this process's registry; with `collect`, its values are read when
   * Prometheus scrapes (`this` is the gauge).
   */
  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: L[] = [],
    collect?: (this: Gauge<L>) => void | Promise<void>,
  ): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry], collect });
  }

  /** A histogram on this process's registry; `buckets` in the metric's unit. */
  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: L[] = [],
  ): Histogram<L> {
    return new Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
