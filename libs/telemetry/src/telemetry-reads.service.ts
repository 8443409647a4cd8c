import {
  AppError,
  asProjectDeviceId,
  encodeCursor,
  NotFoundError,
  Page,
  ProjectDeviceId,
  ProjectId,
  toPage,
} from '@app/common';
import { AppConfig } from '@app/config';
import { DevicesRepository } from '@app/tenancy';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { DeviceMetricsResponse, JsonType, RejectionResponse } from './dto/telemetry.dto';
import { ProjectGate } from './project-gate';
import { CATALOG_MAX_METRICS, CATALOG_READINGS } from './telemetry.constants';
import {
  AggregateQuery,
  ReadingRow,
  RejectionRow,
  TelemetryRepository,
} from './telemetry.repository';

export interface Reading {
  ts: string;
  data: Record<string, unknown>;
}

/**
 * Telemetry reads of the api: a device's readings (newest first, since a time, latest),
 * aggregates, and the readings storage refused. Each read first checks that the device
 * belongs to the project; the costly ones run at most `TELEMETRY_READS_PER_PROJECT` at
 * once per project and replica.
 */
@Injectable()
export class TelemetryReadsService {
  private readonly limits: AppConfig['telemetryReads'];
  private readonly reads: ProjectGate;

  constructor(
    private readonly devices: DevicesRepository,
    private readonly telemetry: TelemetryRepository,
    config: ConfigService<AppConfig, true>,
  ) {
    this.limits = config.get('telemetryReads', { infer: true });
    this.reads = new ProjectGate(
      this.limits.perProject,
      (limit) =>
        new AppError(
          'rate_limited',
          `this project already runs ${limit} telemetry reads at once (TELEMETRY_READS_PER_PROJECT); retry shortly`,
          undefined,
          1,
        ),
    );
  }

  /**
   * Runs a costly read of another lib (a rule backtest) as one of the project's
   * `TELEMETRY_READS_PER_PROJECT` slots; 429 when they are all taken.
   */
  gated<T>(projectId: ProjectId, read: () => Promise<T>): Promise<T> {
    return this.reads.run(projectId, read);
  }

  async list(
    projectId: ProjectId,
    deviceId: string,
    q: { limit: number; cursor?: string; from?: Date; to?: Date },
  ): Promise<Page<Reading>> {
    return this.reads.run(projectId, async () => {
      const device = await this.requireDevice(projectId, deviceId);
      return readingPage(
        await this.telemetry.listNewest(device, { ...q, maxBytes: this.limits.pageMaxBytes }),
      );
    });
  }

  /** `since`: an ISO 8601 UTC timestamp (`IsTimestamp`), passed on exactly as validated. */
  async since(
    projectId: ProjectId,
    deviceId: string,
    since: string,
    q: { limit: number; cursor?: string },
  ): Promise<Page<Reading>> {
    return this.reads.run(projectId, async () => {
      const device = await this.requireDevice(projectId, deviceId);
      return readingPage(
        await this.telemetry.listSince(device, since, {
          ...q,
          maxBytes: this.limits.pageMaxBytes,
        }),
      );
    });
  }

  async latest(projectId: ProjectId, deviceId: string): Promise<Reading> {
    const device = await this.requireDevice(projectId, deviceId);
    const row = await this.telemetry.latest(device);
    if (!row) throw new AppError('not_found', 'the device has no telemetry yet');
    return toReading(row);
  }

  async aggregate(
    projectId: ProjectId,
    deviceId: string,
    q: Omit<AggregateQuery, 'maxRows'>,
  ): Promise<{ items: Array<{ bucket_start: string; value: number; count: number }> }> {
    const days = (q.to.getTime() - q.from.getTime()) / 86400000;
    if (days > this.limits.aggregateMaxDays) {
      const max = this.limits.aggregateMaxDays;
      throw new AppError(
        'validation_failed',
        `an aggregate spans at most ${max} days (TELEMETRY_AGGREGATE_MAX_DAYS); narrow from-to`,
        [
          {
            field: 'to',
            message: `to - from must be at most ${max} days (TELEMETRY_AGGREGATE_MAX_DAYS)`,
          },
        ],
      );
    }
    return this.reads.run(projectId, async () => {
      const device = await this.requireDevice(projectId, deviceId);
      const rows = await this.telemetry.aggregate(device, {
        ...q,
        maxRows: this.limits.aggregateMaxRows,
      });
      return { items: rows.map((r) => ({ ...r, bucket_start: r.bucket_start.toISOString() })) };
    });
  }

  /**
   * The metrics of the device's newest {@link CATALOG_READINGS} readings: their JSON
   * types, their newest value, and whether rules can use them (only JSON numbers count),
   * so a metric that arrives as a string is seen at once.
   */
  async metricCatalog(projectId: ProjectId, deviceId: string): Promise<DeviceMetricsResponse> {
    return this.reads.run(projectId, async () => {
      const device = await this.requireDevice(projectId, deviceId);
      const catalog = await this.telemetry.metricCatalog(
        device,
        CATALOG_READINGS,
        CATALOG_MAX_METRICS,
      );
      return {
        device_id: device,
        readings_examined: catalog.examined,
        readings_limit: CATALOG_READINGS,
        truncated: catalog.metrics.length > CATALOG_MAX_METRICS,
        items: catalog.metrics.slice(0, CATALOG_MAX_METRICS).map((m) => ({
          metric: m.metric,
          types: m.types as JsonType[],
          readings: m.readings,
          numeric_readings: m.numeric_readings,
          last_value: m.last_value,
          last_type: m.last_type as JsonType,
          last_ts: m.last_ts.toISOString(),
          usable_by_rules: m.numeric_readings > 0,
        })),
      };
    });
  }

  /** Readings and batches storage refused, newest first. */
  async listRejections(
    projectId: ProjectId,
    filter: { deviceId?: string; batchId?: string },
    q: { limit: number; cursor?: string },
  ): Promise<Page<RejectionResponse>> {
    return toPage(
      await this.telemetry.listRejections(projectId, filter, q.limit, q.cursor),
      q.limit,
      toRejectionResponse,
      (r) => [r.created_at.toISOString(), r.id],
    );
  }

  /** The device, checked to be the project's (404 otherwise). */
  private async requireDevice(projectId: ProjectId, deviceId: string): Promise<ProjectDeviceId> {
    const device = await this.devices.findById(projectId, deviceId);
    if (!device) throw new NotFoundError('device');
    return asProjectDeviceId(device.id);
  }
}

const toReading = (r: ReadingRow): Reading => ({ ts: r.ts.toISOString(), data: r.data });

/** A page cut by rows or by bytes; `next_cursor` is the ts of its last reading. */
function readingPage(page: { rows: ReadingRow[]; more: boolean }): Page<Reading> {
  const last = page.rows[page.rows.length - 1];
  return {
    items: page.rows.map(toReading),
    next_cursor: page.more && last ? encodeCursor([last.ts.toISOString()]) : null,
  };
}

const toRejectionResponse = (r: RejectionRow): RejectionResponse => ({
  id: r.id,
  device_id: r.device_id,
  batch_id: r.batch_id,
  scope: r.event_index < 0 ? 'batch' : 'reading',
  index: r.event_index < 0 ? null : r.event_index,
  ts: r.ts,
  reading: parseReading(r.reading),
  payload_excerpt: r.payload_excerpt,
  reason: r.reason,
  code: r.sqlstate,
  created_at: r.created_at.toISOString(),
});

function parseReading(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : { value };
  } catch {
    return { text };
  }
}
