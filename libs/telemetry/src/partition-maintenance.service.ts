import { asProjectId, PeriodicTask } from '@app/common';
import { AppConfig, WorkerRoles } from '@app/config';
import { LOCK_CLASS, lockForTransaction, tryLockForTransaction } from '@app/database';
import { MetricsService } from '@app/observability';
import { DevicesRepository, ProjectsRepository } from '@app/tenancy';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { DAY_MS, PartitionPlan, PartitionPolicy, planPartitions } from './partition-plan';
import {
  TelemetryPartition,
  TelemetryPartitionsRepository,
} from './telemetry-partitions.repository';

const EVERY_MS = 3600 * 1000;
/** Rows per retention delete, each its own transaction. */
export const RETENTION_BATCH = 5000;
/** Devices per retention delete statement (`device_id = ANY (…)` through the key). */
const RETENTION_DEVICES = 1000;

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
  /** Readings deleted past projects' own retention. */
  deleted: number;
}

/**
 * The `telemetry` partitions' duty, hourly and at boot where batches are stored (role
 * `ingest`): creates partitions a week ahead, drops those past `TELEMETRY_RETENTION_DAYS`
 * whole, and deletes readings past a project's own `retention_days` in small batches.
 *
 * Any number of processes may run it. Creating (one short transaction) and each drop hold
 * the PostgreSQL advisory lock of partition maintenance: a process waits for it to plan
 * what to create (then finds done what another did), and leaves a drop to whoever holds
 * it. Each retention batch holds its project's lock; a process that finds it taken leaves
 * the project to the holder.
 */
@Injectable()
export class PartitionMaintenance implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(PartitionMaintenance.name);
  private readonly task = new PeriodicTask(
    EVERY_MS,
    () => this.runOnce(),
    this.logger,
    'telemetry partition maintenance failed',
  );
  private readonly policy: PartitionPolicy;
  private readonly runsHere: boolean;
  private readonly deletedRows?: Counter;
  private readonly droppedPartitions?: Counter;
  /** What the last run saw: the partitions and the end of the newest one. */
  private seen?: { partitions: number; aheadUntil: number | null };
  /** Set at shutdown: a long retention run stops between batches (the next run goes on). */
  private stopping = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly partitions: TelemetryPartitionsRepository,
    private readonly projects: ProjectsRepository,
    private readonly devices: DevicesRepository,
    roles: WorkerRoles,
    config: ConfigService<AppConfig, true>,
    metrics: MetricsService,
  ) {
    const storage = config.get('telemetryStorage', { infer: true });
    this.policy = { interval: storage.partitionInterval, retentionDays: storage.retentionDays };
    this.runsHere = roles.runs('ingest', 'partition maintenance');
    // Only where the duty runs: elsewhere the gauges would read as "no partitions ahead".
    if (!this.runsHere) return;
    const seen = () => this.seen;
    metrics.gauge(
      'telemetry_partitions',
      'partitions of telemetry at the last maintenance',
      [],
      function () {
        const s = seen();
        if (s) this.set(s.partitions);
      },
    );
    metrics.gauge(
      'telemetry_partitions_ahead_seconds',
      'how far ahead of now the newest telemetry partition ends (readings later than that are set aside)',
      [],
      function () {
        const s = seen();
        if (s) this.set(s.aheadUntil === null ? 1e9 : (s.aheadUntil - Date.now()) / 1000);
      },
    );
    this.deletedRows = metrics.counter(
      'telemetry_retention_deleted_rows_total',
      "readings deleted past their project's retention_days",
    );
    this.droppedPartitions = metrics.counter(
      'telemetry_partitions_dropped_total',
      'telemetry partitions dropped past TELEMETRY_RETENTION_DAYS',
    );
  }

  onApplicationBootstrap(): void {
    // At once too: a worker back after days away creates what is missing before an hour passes.
    if (this.runsHere) this.task.start({ now: true });
  }

  beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    return this.task.stop();
  }

  /** One run of the duty, as of `now`. */
  async runOnce(now = new Date()): Promise<MaintenanceResult> {
    const { plan, created } = await this.createPartitions(now);
    if (created.length > 0)
      this.logger.log({ partitions: created }, 'telemetry partitions created');
    const dropped: string[] = [];
    // One partition that can't be dropped doesn't hold up the others, nor the rest of the run.
    for (const p of plan.drop)
      try {
        if (await this.drop(p.name)) dropped.push(p.name);
      } catch (err) {
        this.logger.warn(
          { partition: p.name, err: (err as Error).message },
          'telemetry partition not dropped; tried again next run',
        );
      }
    if (dropped.length > 0) {
      this.droppedPartitions?.inc(dropped.length);
      this.logger.log({ partitions: dropped }, 'telemetry partitions dropped past the retention');
    }
    const partitions = await this.partitions.list();
    const ends = partitions.map((p) => p.to);
    this.seen = {
      partitions: partitions.length,
      aheadUntil: ends.includes(null) ? null : Math.max(0, ...ends.map((t) => t!.getTime())),
    };
    const deleted = await this.applyProjectRetention(partitions, now);
    return { created, dropped, deleted };
  }

  /**
   * Plans and creates, in one transaction under the lock. A partition that can't be
   * created (a table of its name left behind, see docs/operations.md) is logged, and the
   * run goes on: the partition of the past apart from those ahead, which stop there (one
   * after it would leave a hole the planner does not fill); the next run tries again.
   */
  private createPartitions(
    now: Date,
  ): Promise<{ plan: PartitionPlan<TelemetryPartition>; created: string[] }> {
    return this.dataSource.transaction(async (em) => {
      await lockForTransaction(em, LOCK_CLASS.TELEMETRY_PARTITIONS, 'telemetry');
      const plan = planPartitions(await this.partitions.list(em), this.policy, now);
      const created: string[] = [];
      for (const p of plan.create) {
        const err = await this.partitions.tryCreate(em, p);
        if (!err) {
          created.push(p.name);
          continue;
        }
        this.logger.error(
          { partition: p.name, err: err.message },
          'telemetry partition not created; tried again next run',
        );
        if (p.from !== null) break;
      }
      return { plan, created };
    });
  }

  /**
   * Drops one partition under the lock, held by a transaction of its own (DETACH …
   * CONCURRENTLY can't run in one). False when another process holds the lock, or the
   * partition went meanwhile.
   */
  private async drop(name: string): Promise<boolean> {
    const dropped = await this.partitions.whileLocked(async () => {
      const current = (await this.partitions.list()).find((p) => p.name === name);
      if (current) await this.partitions.detachAndDrop(current);
      return current !== undefined;
    });
    return dropped === true;
  }

  /**
   * Deletes the readings past each project's `retention_days` (where that is shorter than
   * the global retention, which drops whole partitions anyway): per partition that holds
   * any, per 1,000 of the project's devices, {@link RETENTION_BATCH} rows per transaction.
   */
  private async applyProjectRetention(
    partitions: TelemetryPartition[],
    now: Date,
  ): Promise<number> {
    const global = this.policy.retentionDays;
    const projects = (await this.projects.withRetention()).filter(
      (p) => global === 0 || p.retentionDays < global,
    );
    let total = 0;
    for (const project of projects) {
      const before = new Date(now.getTime() - project.retentionDays * DAY_MS);
      const holding = partitions.filter((p) => p.from === null || p.from < before);
      if (holding.length === 0) continue;
      const ids = await this.devices.idsOf(asProjectId(project.id));
      const deleted = await this.deleteInBatches(project.id, holding, ids, before);
      if (deleted > 0) {
        total += deleted;
        this.deletedRows?.inc(deleted);
        this.logger.log(
          { projectId: project.id, deleted, before: before.toISOString() },
          "readings deleted past the project's retention",
        );
      }
    }
    return total;
  }

  private async deleteInBatches(
    projectId: string,
    partitions: TelemetryPartition[],
    ids: string[],
    before: Date,
  ): Promise<number> {
    let deleted = 0;
    for (const partition of partitions) {
      for (let i = 0; i < ids.length; i += RETENTION_DEVICES) {
        const devices = ids.slice(i, i + RETENTION_DEVICES);
        for (;;) {
          if (this.stopping) return deleted;
          const n = await this.dataSource.transaction(async (em) =>
            (await tryLockForTransaction(em, LOCK_CLASS.TELEMETRY_RETENTION, projectId))
              ? this.partitions.deleteOlder(em, partition.name, devices, before, RETENTION_BATCH)
              : null,
          );
          if (n === null) return deleted; // another process is on this project
          deleted += n;
          if (n < RETENTION_BATCH) break;
        }
      }
    }
    return deleted;
  }
}
