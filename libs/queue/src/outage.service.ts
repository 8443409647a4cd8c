import { pingDatabase } from '@app/database';
import { MetricsService } from '@app/observability';
import { RedisService } from '@app/redis';
import { Injectable, Logger, Optional } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { ModuleRef } from '@nestjs/core';
import { setMaxListeners } from 'node:events';
import type { Counter, Gauge } from 'prom-client';
import type { DataSource } from 'typeorm';

/** A job's wait starts at this and doubles per retry, up to {@link MAX_RETRY_DELAY_MS}. */
const FIRST_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 5000;
const PING_TIMEOUT_MS = 2000;

export class ShuttingDownError extends Error {
  constructor() {
    super('the worker is shutting down');
  }
}

/**
 * Where jobs wait out an outage of PostgreSQL or Redis instead of spending their
 * attempts: a job whose work failed for want of a dependency waits here until every
 * dependency answers again, then runs again, for as long as the outage lasts. One probe
 * loop serves every waiting job, so a thousand waiting jobs cost one ping per interval.
 * The wait shows in `worker_jobs_waiting_on_dependencies{queue}` and
 * `worker_dependencies_down`, and the worker's readiness is 503 meanwhile (its own ping).
 */
@Injectable()
export class OutageService {
  private readonly logger = new Logger(OutageService.name);
  private readonly closing = new AbortController();
  /** Rejects once shutdown begins; every wait races it. */
  private readonly closed: Promise<never>;
  private probe?: Promise<void>;
  private downSince?: number;
  private readonly waitingJobs: Gauge<'queue'>;
  private readonly waits: Counter<'queue'>;
  private readonly down: Gauge;
  private dataSource?: DataSource;

  constructor(
    metrics: MetricsService,
    private readonly moduleRef: ModuleRef,
    @Optional() private readonly redis?: RedisService,
  ) {
    this.closed = new Promise<never>((_, reject) =>
      this.closing.signal.addEventListener('abort', () => reject(new ShuttingDownError()), {
        once: true,
      }),
    );
    this.closed.catch(() => undefined); // nobody may be waiting when it fires
    // One listener per waiting job: a thousand of them in an outage is not a leak.
    setMaxListeners(0, this.closing.signal);
    this.waitingJobs = metrics.gauge(
      'worker_jobs_waiting_on_dependencies',
      'jobs in flight that wait for PostgreSQL or Redis to answer again',
      ['queue'],
    );
    this.waits = metrics.counter(
      'worker_dependency_waits_total',
      'times a job waited out a PostgreSQL or Redis outage instead of failing',
      ['queue'],
    );
    this.down = metrics.gauge(
      'worker_dependencies_down',
      '1 while the worker finds PostgreSQL or Redis unreachable, else 0',
    );
  }

  /** Whether shutdown began: waiting jobs give their work back instead of waiting on. */
  get shuttingDown(): boolean {
    return this.closing.signal.aborted;
  }

  /** Stops every wait (they reject with {@link ShuttingDownError}); idempotent. */
  shutdown(): void {
    this.closing.abort();
  }

  /**
   * Resolves when PostgreSQL and Redis both answer, no sooner than a delay that grows with
   * `retry` (a failure that is not really an outage must not spin); rejects with
   * {@link ShuttingDownError} when the worker shuts down meanwhile.
   */
  async waitForDependencies(queue: string, retry: number, cause: unknown): Promise<void> {
    this.waits.inc({ queue });
    this.waitingJobs.inc({ queue });
    if (this.downSince === undefined) {
      this.downSince = Date.now();
      this.logger.warn(
        { queue, err: (cause as Error)?.message },
        'PostgreSQL or Redis is unavailable: jobs wait for it without using their attempts',
      );
    }
    try {
      await this.sleep(Math.min(FIRST_RETRY_DELAY_MS * 2 ** retry, MAX_RETRY_DELAY_MS));
      this.probe ??= this.probeUntilUp().finally(() => (this.probe = undefined));
      await Promise.race([this.probe, this.closed]);
    } finally {
      this.waitingJobs.dec({ queue });
    }
  }

  private async probeUntilUp(): Promise<void> {
    for (let delay = FIRST_RETRY_DELAY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS)) {
      if (this.shuttingDown) throw new ShuttingDownError();
      try {
        await this.ping();
        this.down.set(0);
        if (this.downSince !== undefined) {
          this.logger.log(
            { downForMs: Date.now() - this.downSince },
            'PostgreSQL and Redis answer again: waiting jobs resume',
          );
          this.downSince = undefined;
        }
        return;
      } catch {
        this.down.set(1);
      }
      await this.sleep(delay);
    }
  }

  private async ping(): Promise<void> {
    const dataSource = this.resolveDataSource();
    await Promise.all([
      dataSource ? pingDatabase(dataSource, PING_TIMEOUT_MS) : undefined,
      this.redis?.ping(PING_TIMEOUT_MS),
    ]);
  }

  /** The process's DataSource, when it has one (looked up lazily: this lib owns no connection). */
  private resolveDataSource(): DataSource | undefined {
    if (!this.dataSource) {
      try {
        this.dataSource = this.moduleRef.get<DataSource>(getDataSourceToken(), { strict: false });
      } catch {
        return undefined;
      }
    }
    return this.dataSource;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.shuttingDown) return reject(new ShuttingDownError());
      const timer = setTimeout(() => {
        this.closing.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(new ShuttingDownError());
      };
      this.closing.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
