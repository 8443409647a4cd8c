import { AppError, decodeTimeCursor } from '@app/common';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

export interface ReadingRow {
  ts: Date;
  data: Record<string, unknown>;
}

export type AggregateFn = 'avg' | 'min' | 'max' | 'sum' | 'count';

/**
 * Telemetry rows, written and read as SQL: these statements are the hot path and their
 * shape matters (see docs/telemetry-schema.md and `npm run bench:ingest`). Every method
 * takes the device, whose project the caller has already checked.
 */
@Injectable()
export class TelemetryRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Stores a batch in one statement and returns how many rows were new. `payload` is the
   * request body (`{device_external_id, events}`); PostgreSQL parses it server-side from a
   * single parameter (no per-row binds, no array-literal escaping). jsonb, not json:
   * with duplicated keys it keeps the last, as the api's JSON.parse did when validating.
   * DISTINCT ON keeps the first event of each ts within the batch, and ON CONFLICT makes
   * replays no-ops. Sorting by ts also makes the primary-key inserts sequential.
   */
  async insertBatch(
    em: EntityManager,
    deviceId: string,
    payload: string,
  ): Promise<{ inserted: number; late: number }> {
    // `late`: new rows at or before what rule evaluation already passed; they are stored
    // but never evaluated (the contract's "late" readings).
    const [row] = (await em.query(
      `WITH ins AS (
         INSERT INTO telemetry (device_id, ts, data)
         SELECT DISTINCT ON (e.ts) $1::uuid, e.ts, e.data
           FROM ROWS FROM (jsonb_to_recordset($2::jsonb -> 'events') AS (ts timestamptz, data jsonb))
                WITH ORDINALITY AS e(ts, data, n)
          ORDER BY e.ts, e.n
         ON CONFLICT (device_id, ts) DO NOTHING
         RETURNING ts)
       SELECT count(*)::int AS inserted,
              count(*) FILTER (WHERE ts <= (SELECT evaluated_until FROM devices WHERE id = $1))::int AS late
         FROM ins`,
      [deviceId, payload],
    )) as Array<{ inserted: number; late: number }>;
    return row;
  }

  /** Newest first; `cursor` is the ts of the last row of the previous page. */
  async listNewest(
    deviceId: string,
    opts: { limit: number; cursor?: string; from?: Date; to?: Date },
  ): Promise<ReadingRow[]> {
    const params: unknown[] = [deviceId, opts.limit + 1];
    const where = ['device_id = $1'];
    if (opts.cursor) where.push(`ts < $${params.push(decodeTimeCursor(opts.cursor))}`);
    if (opts.from) where.push(`ts >= $${params.push(opts.from.toISOString())}`);
    if (opts.to) where.push(`ts < $${params.push(opts.to.toISOString())}`);
    return this.dataSource.query(
      `SELECT ts, data FROM telemetry WHERE ${where.join(' AND ')} ORDER BY ts DESC LIMIT $2`,
      params,
    );
  }

  /** Oldest first after `since` (exclusive); `cursor` continues after a previous page. */
  async listSince(
    deviceId: string,
    since: Date,
    opts: { limit: number; cursor?: string },
  ): Promise<ReadingRow[]> {
    const after = opts.cursor ? decodeTimeCursor(opts.cursor) : since.toISOString();
    return this.dataSource.query(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 AND ts > $2 ORDER BY ts ASC LIMIT $3`,
      [deviceId, after, opts.limit + 1],
    );
  }

  async latest(deviceId: string): Promise<ReadingRow | null> {
    const rows: ReadingRow[] = await this.dataSource.query(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts DESC LIMIT 1`,
      [deviceId],
    );
    return rows[0] ?? null;
  }

  /**
   * One query: epoch-aligned buckets with `date_bin`, over readings whose `metric` is a
   * JSON number (strings, booleans and missing values don't count). Empty buckets are
   * omitted.
   */
  async aggregate(
    deviceId: string,
    q: { metric: string; from: Date; to: Date; bucketSeconds: number; agg: AggregateFn },
  ): Promise<Array<{ bucket_start: Date; value: number; count: number }>> {
    const fn = { avg: 'avg', min: 'min', max: 'max', sum: 'sum', count: 'count' }[q.agg];
    const rows: Array<{ bucket_start: Date; value: string | number; count: string }> =
      await this.dataSource
        .query(
          `SELECT date_bin(make_interval(secs => $5), ts, TIMESTAMPTZ 'epoch') AS bucket_start,
              ${fn}((data ->> $2)::float8) AS value,
              count(*) AS count
         FROM telemetry
        WHERE device_id = $1 AND ts >= $3 AND ts < $4 AND jsonb_typeof(data -> $2) = 'number'
        GROUP BY 1
        ORDER BY 1`,
          [deviceId, q.metric, q.from.toISOString(), q.to.toISOString(), q.bucketSeconds],
        )
        .catch((err: unknown) => {
          // A sum or avg of values near the double limit overflows: the data, not us.
          if ((err as { code?: string }).code === '22003') {
            throw new AppError(
              'validation_failed',
              `the ${q.agg} of ${q.metric} overflows a double in this range`,
              [
                {
                  field: 'agg',
                  message: `the ${q.agg} overflows; use min, max or count, or narrow the range`,
                },
              ],
            );
          }
          throw err;
        });
    return rows.map((r) => ({
      bucket_start: r.bucket_start,
      value: Number(r.value),
      count: Number(r.count),
    }));
  }
}
