import {
  AppError,
  classifyFailure,
  decodeTimeCursor,
  decodeTimeIdCursor,
  ProjectDeviceId,
  ProjectId,
  sqlState,
} from '@app/common';
import type { LockUnless } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource, EntityManager, QueryResult } from 'typeorm';
import { batchAsStored, EvaluationReading, StoredBatch } from './batch-readings';
import { cutBatch } from './cut-batch';

export type { EvaluationReading, StoredBatch } from './batch-readings';

export interface ReadingRow {
  ts: Date;
  data: Record<string, unknown>;
}

export type AggregateFn = 'avg' | 'min' | 'max' | 'sum' | 'count';

/** An aggregate over [from, to); it may read at most `maxRows` readings. */
export interface AggregateQuery {
  metric: string;
  from: Date;
  to: Date;
  bucketSeconds: number;
  agg: AggregateFn;
  maxRows: number;
}

/** A reading (or, with `index` -1, a whole batch) that storage refused, and why. */
export interface Rejection {
  /** Position of the event in its batch; -1 for the whole batch. */
  index: number;
  /** The event's `ts` as sent. */
  ts: string | null;
  /** The event as sent, JSON. */
  reading: string | null;
  reason: string;
  sqlstate: string | null;
}

export interface RejectionRow {
  id: string;
  device_id: string;
  batch_id: string;
  event_index: number;
  ts: string | null;
  reading: string | null;
  payload_excerpt: string | null;
  reason: string;
  sqlstate: string | null;
  created_at: Date;
}

/** One metric of a device's recent readings ({@link TelemetryRepository.metricCatalog}). */
export interface MetricCatalogRow {
  metric: string;
  /** jsonb_typeof of its values, distinct, sorted. */
  types: string[];
  readings: number;
  numeric_readings: number;
  /** Its value in the newest reading that has it, as JSON (so null for a JSON null). */
  last_value: unknown;
  last_type: string;
  last_ts: Date;
}

type Attempt<T> = { ok: true; value: T } | { ok: false; reason: string; sqlstate: string | null };

/** SQLSTATE of a duplicate key. */
const UNIQUE_VIOLATION = '23505';

/**
 * Whether a first try failed on the batch itself (a duplicate, or a value PostgreSQL
 * refuses), which the next step decides; anything else (a lost connection, a timeout) is
 * the caller's.
 */
const refusedFirstTry = (err: unknown): boolean =>
  sqlState(err) === UNIQUE_VIOLATION || classifyFailure(err) === 'data';

/** {@link TelemetryRepository.insertBatch}'s first try: fails as a whole on a duplicate. */
const COPY_TELEMETRY = 'COPY telemetry (device_id, ts, data) FROM STDIN';

/**
 * A batch's first try without a savepoint failed, so the transaction is lost: run it again
 * with one ({@link TelemetryRepository.insertBatch}'s `nothingAfterCursor`).
 */
export class UnsavedFirstTryFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(`first try without a savepoint failed: ${(cause as Error)?.message ?? cause}`);
  }
}

/**
 * The first try of a batch {@link cutBatch} cannot cut; fails as a whole on a duplicate too
 * (exported for `npm run bench:insert`).
 */
export const PLAIN_INSERT = `INSERT INTO telemetry (device_id, ts, data)
  SELECT $1::uuid, e.ts, e.data
    FROM jsonb_to_recordset($2::jsonb -> 'events') AS e(ts timestamptz(3), data jsonb)`;

/**
 * The `telemetry` and `telemetry_rejections` tables (this lib owns both), written and read
 * as SQL: these statements are the hot path and their shape matters (see
 * docs/telemetry-schema.md and `npm run bench:ingest`). The table has no project column:
 * the api's reads take a `ProjectDeviceId` (a device found in the request's project), the
 * one tenant-scoped read, {@link listRejections}, the `ProjectId`; the worker's writes and
 * evaluation reads take the device id of a job queued under its project.
 * The transaction manager comes first where there is one.
 */
@Injectable()
export class TelemetryRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Stores a batch and returns how many rows were new. `payload` is the request body
   * (`{device_external_id, events}`) as the api received it: its UTF-8 bytes (decoded only
   * when the cut declines them) or its text. `evaluatedUntil` is the
   * device's evaluation cursor, read under the device row's lock in this same transaction
   * (so it cannot move meanwhile); null when nothing was evaluated.
   *
   * Nearly every batch is new readings with distinct timestamps, so the first try stores
   * them all or fails as a whole, in a savepoint: a COPY of the events cut from the payload
   * ({@link cutBatch}). PostgreSQL reads each event's `data` once, where the INSERT from
   * `jsonb_to_recordset` parses the whole body and then copies each `data` out of it, about
   * twice a COPY's work (docs/benchmarks.md). A body the cut declines takes that plain
   * INSERT instead: one parameter parsed server-side as jsonb, which keeps the last of
   * duplicated keys as the api's JSON.parse did when validating (so does the cut).
   *
   * A duplicate (a ts twice in the batch, or a replayed batch) makes the first try fail as
   * a whole with a unique violation; it is rolled back to the savepoint and the batch goes
   * through {@link insertDeduplicating}, which stores exactly what it would have stored on
   * its own. So does a batch PostgreSQL refuses a value of: the deduplicating statement
   * decides (a refused value that is a duplicate is dropped, as it always was), and throws
   * if the batch is refused all the same.
   *
   * What the first try stores (the count, the late ones, the readings to evaluate) is read
   * from the payload, by the cut or by {@link batchAsStored}, and nothing is returned:
   * RETURNING the rows cost PostgreSQL about a fifth of the statement. A payload neither
   * can read as PostgreSQL would is asked back as before.
   *
   * `nothingAfterCursor`: the caller knows, under the device row's lock, that none of the
   * device's stored readings is after `evaluatedUntil` (none at all when it is null). When
   * every event of a cut batch is after it too, and each later than the one before, no
   * event can be a duplicate, and the COPY goes without the savepoint (two round trips
   * fewer). Should it fail all the same (a value PostgreSQL refuses), the transaction is
   * lost: this throws {@link UnsavedFirstTryFailed}, and the caller runs the transaction
   * again without the hint, which then does what it always did.
   */
  async insertBatch(
    em: EntityManager,
    deviceId: string,
    body: string | Buffer,
    evaluatedUntil: Date | null,
    evaluate?: string[],
    nothingAfterCursor = false,
  ): Promise<StoredBatch> {
    // Known from the payload when it can be (nearly always): the first try returns nothing.
    const cut = cutBatch(body, deviceId, evaluatedUntil, evaluate);
    if (nothingAfterCursor && cut && cut.stored.late === 0 && cut.ascending) {
      const stored = await this.copyIn(em, cut.copy).catch((err: unknown) => {
        throw refusedFirstTry(err) ? new UnsavedFirstTryFailed(err) : err;
      });
      // Never seen: the payload read one way and stored another.
      if (stored !== cut.stored.inserted)
        throw new UnsavedFirstTryFailed(`stored ${stored} of ${cut.stored.inserted}`);
      return cut.stored;
    }
    // The text, for what reads it or takes it as a parameter (a Buffer would be bytea):
    // decoded only when the batch goes that way.
    let text: string | undefined;
    const payload = (): string => (text ??= body.toString());
    const known = cut?.stored ?? batchAsStored(payload(), evaluatedUntil, evaluate);
    await em.query('SAVEPOINT fast_insert');
    try {
      let row: StoredBatch | null = null;
      if (known) {
        const stored = cut
          ? await this.copyIn(em, cut.copy)
          : (
              (await em.queryRunner!.query(
                PLAIN_INSERT,
                [deviceId, payload()],
                true,
              )) as QueryResult
            ).affected;
        if (stored === known.inserted) row = known;
        // Never seen: the payload read one way and stored another. PostgreSQL decides.
        else await em.query('ROLLBACK TO SAVEPOINT fast_insert');
      }
      row ??= await this.countingInserted(
        em,
        PLAIN_INSERT,
        [deviceId, payload(), evaluatedUntil],
        evaluate,
      );
      // Released, though the commit would end it: the rest of the transaction would run in
      // its subtransaction, and the device row the transaction locked, updated by another
      // transaction id, would get a multixact per batch.
      await em.query('RELEASE SAVEPOINT fast_insert');
      return row;
    } catch (err) {
      if (!refusedFirstTry(err)) throw err;
      await em.query('ROLLBACK TO SAVEPOINT fast_insert');
      await em.query('RELEASE SAVEPOINT fast_insert');
    }
    return this.insertDeduplicating(em, deviceId, payload(), evaluatedUntil, evaluate);
  }

  /** COPY text rows into telemetry, on the transaction's connection (TypeORM has no COPY). */
  private async copyIn(em: EntityManager, rows: Buffer): Promise<number> {
    const client = (await em.queryRunner!.connect()) as PoolClient;
    const stream = client.query(copyFrom(COPY_TELEMETRY));
    await pipeline(Readable.from([rows]), stream);
    return stream.rowCount;
  }

  /**
   * The batch in one statement that tolerates duplicates: DISTINCT ON keeps the first event
   * of each ts within the batch, and ON CONFLICT makes replays no-ops. {@link insertBatch}'s
   * fallback (public for `npm run bench:insert`).
   *
   * `ts` is read as `timestamptz(3)`, the column's precision (rounded to the millisecond):
   * two events of one millisecond are one reading, and the first of the batch must win.
   * Read at microseconds, DISTINCT ON kept the earlier in time instead (`…01.0010Z` then
   * `…01.0006Z` stored the second).
   */
  async insertDeduplicating(
    em: EntityManager,
    deviceId: string,
    payload: string,
    evaluatedUntil: Date | null,
    evaluate?: string[],
  ): Promise<StoredBatch> {
    return this.countingInserted(
      em,
      `INSERT INTO telemetry (device_id, ts, data)
       SELECT DISTINCT ON (e.ts) $1::uuid, e.ts, e.data
         FROM ROWS FROM (jsonb_to_recordset($2::jsonb -> 'events') AS (ts timestamptz(3), data jsonb))
              WITH ORDINALITY AS e(ts, data, n)
        ORDER BY e.ts, e.n
       ON CONFLICT (device_id, ts) DO NOTHING`,
      [deviceId, payload, evaluatedUntil],
      evaluate,
    );
  }

  /**
   * Runs an INSERT into telemetry whose third parameter is the evaluation cursor, and
   * counts the rows it stored and, of those, the `late` ones: at or before what rule
   * evaluation already passed, so stored but never evaluated (the contract's "late"
   * readings). With `evaluate` (metric names), the rows stored after the cursor also come
   * back from the INSERT itself, as {@link readingsAfter} would read them: rule evaluation
   * of the batch without reading it back.
   */
  private async countingInserted(
    em: EntityManager,
    insert: string,
    params: [deviceId: string, payload: string, evaluatedUntil: Date | null],
    evaluate?: string[],
  ): Promise<StoredBatch> {
    if (!evaluate) {
      const [row] = (await em.query(
        `WITH ins AS (${insert} RETURNING ts)
         SELECT count(*)::int AS inserted,
                count(*) FILTER (WHERE ts <= $3::timestamptz)::int AS late
           FROM ins`,
        params,
      )) as Array<{ inserted: number; late: number }>;
      return row;
    }
    const rows = (await em.query(
      // The metrics are read in RETURNING, so no row's whole `data` is kept for the sort.
      `WITH ins AS (${insert} RETURNING ts <= $3::timestamptz AS late, ${evaluationColumns(evaluate, 4)})
       SELECT ${['late', 'ts_ms', ...evaluate.map((_, i) => `m${i}`)].join(', ')}
         FROM ins ORDER BY ts_ms`,
      [...params, ...evaluate],
    )) as EvaluationRow[];
    const fresh = rows.filter((r) => r.late !== true);
    return {
      inserted: rows.length,
      late: rows.length - fresh.length,
      readings: toEvaluationReadings(fresh, evaluate),
    };
  }

  /**
   * {@link insertBatch} for a batch that storage refused as a whole (a value PostgreSQL
   * cannot hold, SQLSTATE class 22 and the like): stores every event that can be stored and
   * returns the others as rejections. Halves the batch until the failing events stand
   * alone, each try in a savepoint, lower halves first so the first event of a ts still
   * wins, as in the one-statement insert. Costs O(k log n) statements for k bad events of
   * n; only ever run after the fast path failed.
   */
  async insertSalvaging(
    em: EntityManager,
    deviceId: string,
    payload: string,
    evaluatedUntil: Date | null,
  ): Promise<{ inserted: number; late: number; rejected: Rejection[] }> {
    const result = { inserted: 0, late: 0, rejected: [] as Rejection[] };
    let events: unknown[];
    try {
      events = (JSON.parse(payload) as { events: unknown[] }).events;
      if (!Array.isArray(events)) throw new Error('events is not an array');
    } catch (err) {
      result.rejected.push({
        index: -1,
        ts: null,
        reading: null,
        reason: `the batch is not readable: ${(err as Error).message}`,
        sqlstate: null,
      });
      return result;
    }
    const ranges: Array<[number, number]> = [[0, events.length]];
    while (ranges.length > 0) {
      const [lo, hi] = ranges.pop()!;
      const slice = JSON.stringify({ events: events.slice(lo, hi) });
      const tried = await this.inSavepoint(em, () =>
        this.insertBatch(em, deviceId, slice, evaluatedUntil),
      );
      if (tried.ok) {
        result.inserted += tried.value.inserted;
        result.late += tried.value.late;
      } else if (hi - lo === 1) {
        const event = events[lo] as { ts?: unknown } | null;
        result.rejected.push({
          index: lo,
          ts: typeof event?.ts === 'string' ? event.ts : null,
          reading: JSON.stringify(event),
          reason: tried.reason,
          sqlstate: tried.sqlstate,
        });
      } else {
        const mid = (lo + hi) >> 1;
        ranges.push([mid, hi], [lo, mid]);
      }
    }
    return result;
  }

  /** Runs `fn` in a savepoint; a data error rolls back to it and is returned, not thrown. */
  private async inSavepoint<T>(em: EntityManager, fn: () => Promise<T>): Promise<Attempt<T>> {
    await em.query('SAVEPOINT salvage');
    try {
      const value = await fn();
      await em.query('RELEASE SAVEPOINT salvage');
      return { ok: true, value };
    } catch (err) {
      if (classifyFailure(err) !== 'data') throw err;
      await em.query('ROLLBACK TO SAVEPOINT salvage');
      return { ok: false, reason: (err as Error).message, sqlstate: sqlState(err) ?? null };
    }
  }

  /** Records refusals of a batch; a batch applied again records each once. */
  async recordRejections(
    em: EntityManager,
    batch: { projectId: string; deviceId: string; batchId: string },
    rejections: Array<Rejection & { payload?: string }>,
  ): Promise<void> {
    if (rejections.length === 0) return;
    await em.query(
      `INSERT INTO telemetry_rejections
              (project_id, device_id, batch_id, event_index, ts, reading, payload, reason, sqlstate)
       SELECT $1, $2, $3, r.event_index, r.ts, r.reading, r.payload, r.reason, r.sqlstate
         FROM unnest($4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
              AS r(event_index, ts, reading, payload, reason, sqlstate)
       ON CONFLICT (batch_id, event_index) DO NOTHING`,
      [
        batch.projectId,
        batch.deviceId,
        batch.batchId,
        rejections.map((r) => r.index),
        rejections.map((r) => storable(r.ts)),
        rejections.map((r) => storable(r.reading)),
        rejections.map((r) => storable(r.payload ?? null)),
        rejections.map((r) => storable(r.reason)),
        rejections.map((r) => r.sqlstate),
      ],
    );
  }

  /** A project's rejections, newest first by (created_at, id). */
  listRejections(
    projectId: ProjectId,
    filter: { deviceId?: string; batchId?: string },
    limit: number,
    cursor?: string,
  ): Promise<RejectionRow[]> {
    const params: unknown[] = [projectId, limit + 1];
    const where = ['project_id = $1'];
    if (filter.deviceId) where.push(`device_id = $${params.push(filter.deviceId)}`);
    if (filter.batchId) where.push(`batch_id = $${params.push(filter.batchId)}`);
    if (cursor) {
      const [createdAt, id] = decodeTimeIdCursor(cursor);
      where.push(`(created_at, id) < ($${params.push(createdAt)}, $${params.push(id)})`);
    }
    return this.dataSource.query(
      `SELECT id, device_id, batch_id, event_index, ts, reading, left(payload, 1024) AS payload_excerpt,
              reason, sqlstate, created_at
         FROM telemetry_rejections WHERE ${where.join(' AND ')}
        ORDER BY created_at DESC, id DESC LIMIT $2`,
      params,
    );
  }

  /**
   * Newest first; `cursor` is the ts of the last row of the previous page. At most `limit`
   * rows and, past the first, at most `maxBytes` of data (as stored): `more` says whether
   * rows were left for the next page. The byte cut is made in SQL, so rows beyond it never
   * leave the database (a page of 1,000 readings of 70 KB would be 70 MB).
   */
  listNewest(
    deviceId: ProjectDeviceId,
    opts: { limit: number; maxBytes: number; cursor?: string; from?: Date; to?: Date },
  ): Promise<{ rows: ReadingRow[]; more: boolean }> {
    const params: unknown[] = [deviceId];
    const where = ['device_id = $1'];
    if (opts.cursor) where.push(`ts < $${params.push(decodeTimeCursor(opts.cursor))}`);
    if (opts.from) where.push(`ts >= $${params.push(opts.from.toISOString())}`);
    if (opts.to) where.push(`ts < $${params.push(opts.to.toISOString())}`);
    return this.capped(
      `SELECT ts, data FROM telemetry WHERE ${where.join(' AND ')}`,
      'DESC',
      params,
      opts,
    );
  }

  /**
   * Oldest first after `since` (exclusive; an ISO 8601 timestamp, compared at the
   * precision it was written with); `cursor` continues after a previous page.
   */
  listSince(
    deviceId: ProjectDeviceId,
    since: string,
    opts: { limit: number; maxBytes: number; cursor?: string },
  ): Promise<{ rows: ReadingRow[]; more: boolean }> {
    const after = opts.cursor ? decodeTimeCursor(opts.cursor) : since;
    return this.capped(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 AND ts > $2::timestamptz`,
      'ASC',
      [deviceId, after],
      opts,
    );
  }

  /**
   * A page of `select` (ts, data) in ts order, cut at `limit` rows and at `maxBytes` of
   * JSON text, what the response will hold (not the size as stored: jsonb is compressed,
   * 66 KB of repetitive JSON can take 1 KB on disk). The first row always comes, whatever
   * its size, so a walk never stalls. Rows past the cut are sized but never sent.
   */
  private async capped(
    select: string,
    order: 'ASC' | 'DESC',
    params: unknown[],
    opts: { limit: number; maxBytes: number },
  ): Promise<{ rows: ReadingRow[]; more: boolean }> {
    const limit = `$${params.length + 1}`;
    const max = `$${params.length + 2}`;
    const rows: Array<ReadingRow & { fetched: string }> = await this.dataSource.query(
      `SELECT ts, data, fetched FROM (
         SELECT ts, data, count(*) OVER () AS fetched,
                sum(size) OVER (ORDER BY ts ${order} ROWS UNBOUNDED PRECEDING) - size AS before
           FROM (SELECT ts, data, octet_length(data::text) AS size
                   FROM (${select} ORDER BY ts ${order} LIMIT ${limit}) page) rows
       ) sized
       WHERE before < ${max} OR before = 0
       ORDER BY ts ${order}`,
      [...params, opts.limit + 1, opts.maxBytes],
    );
    const fetched = Number(rows[0]?.fetched ?? 0);
    const more = fetched > opts.limit || rows.length < fetched;
    const page = rows.slice(0, opts.limit).map(({ ts, data }) => ({ ts, data }));
    return { rows: page, more };
  }

  /**
   * What the device's newest `readings` readings carry, per metric (jsonb_each over each
   * reading's data, all in SQL): the JSON types seen, how many readings have it and how
   * many as a number, and its newest value. At most `maxMetrics` metrics, by name (byte
   * order); `examined` is how many readings were read. The work is bounded by `readings`
   * (and 64 metrics a reading), found through the (device_id, ts) key.
   */
  async metricCatalog(
    deviceId: ProjectDeviceId,
    readings: number,
    maxMetrics: number,
  ): Promise<{ examined: number; metrics: MetricCatalogRow[] }> {
    const rows: Array<{ examined: number } & Partial<MetricCatalogRow>> =
      await this.dataSource.query(
        `WITH recent AS (
           SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts DESC LIMIT $2),
         vals AS (
           SELECT r.ts, e.key, e.value, jsonb_typeof(e.value) AS type
             FROM recent r CROSS JOIN LATERAL jsonb_each(r.data) e
            WHERE jsonb_typeof(r.data) = 'object'),
         per_metric AS (
           SELECT key, array_agg(DISTINCT type ORDER BY type) AS types,
                  count(*)::int AS readings,
                  (count(*) FILTER (WHERE type = 'number'))::int AS numeric_readings
             FROM vals GROUP BY key),
         newest AS (
           SELECT DISTINCT ON (key) key, value, type, ts FROM vals ORDER BY key, ts DESC)
         SELECT (SELECT count(*) FROM recent)::int AS examined, c.*
           FROM (SELECT 1) one LEFT JOIN (
             SELECT m.key AS metric, m.types, m.readings, m.numeric_readings,
                    n.value AS last_value, n.type AS last_type, n.ts AS last_ts
               FROM per_metric m JOIN newest n USING (key)
              ORDER BY m.key COLLATE "C" LIMIT $3) c ON true
          ORDER BY c.metric COLLATE "C"`,
        [deviceId, readings, maxMetrics + 1],
      );
    return {
      examined: rows[0]?.examined ?? 0,
      metrics: rows.filter((r): r is typeof r & MetricCatalogRow => r.metric != null),
    };
  }

  async latest(deviceId: ProjectDeviceId): Promise<ReadingRow | null> {
    const rows: ReadingRow[] = await this.dataSource.query(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts DESC LIMIT 1`,
      [deviceId],
    );
    return rows[0] ?? null;
  }

  /**
   * Up to `limit` readings of the device after `after` (null: from the first), oldest
   * first, for rule evaluation: only `metrics`, each a finite double or null.
   */
  async readingsAfter(
    em: EntityManager,
    deviceId: string,
    after: Date | null,
    metrics: string[],
    limit: number,
  ): Promise<EvaluationReading[]> {
    const rows = (await em.query(
      `SELECT ${evaluationColumns(metrics, 4)} FROM telemetry
        WHERE device_id = $1 AND ts > COALESCE($2::timestamptz, '-infinity')
        ORDER BY ts LIMIT $3`,
      [deviceId, after, limit, ...metrics],
    )) as EvaluationRow[];
    return toEvaluationReadings(rows, metrics);
  }

  /**
   * Up to `limit` of the device's readings in [`from`, `to`) whose `metric` is a JSON
   * number, after `after` (epoch ms, exclusive; null: from `from`), oldest first, as rule
   * evaluation reads them: a rule backtest's next chunk. Readings without the metric as a
   * number never enter a window, so they are not read at all.
   */
  async numericReadingsBetween(
    deviceId: ProjectDeviceId,
    metric: string,
    range: { from: Date; to: Date; after: number | null },
    limit: number,
  ): Promise<EvaluationReading[]> {
    const rows = (await this.dataSource.query(
      `SELECT ${evaluationColumns([metric], 6)} FROM telemetry
        WHERE device_id = $1 AND ts >= $2 AND ts < $3
          AND ts > COALESCE(to_timestamp($4::float8 / 1000), '-infinity')
          AND jsonb_typeof(data -> $6) = 'number'
        ORDER BY ts LIMIT $5`,
      [deviceId, range.from, range.to, range.after, limit, metric],
    )) as EvaluationRow[];
    return toEvaluationReadings(rows, [metric]);
  }

  /**
   * Whether the device has readings after `after` (any at all when null), as the check of a
   * lock's statement ({@link LockUnless}): decided with the lock in one round trip.
   */
  readingsAfterCheck(deviceId: string, after: Date | null): LockUnless {
    return {
      sql: `EXISTS (SELECT 1 FROM telemetry
                     WHERE device_id = $3 AND ts > COALESCE($4::timestamptz, '-infinity'))`,
      params: [deviceId, after],
    };
  }

  /** The ts of the device's newest reading; null when it has none. */
  async newestTs(em: EntityManager, deviceId: string): Promise<Date | null> {
    const [row] = (await em.query(`SELECT max(ts) AS newest FROM telemetry WHERE device_id = $1`, [
      deviceId,
    ])) as Array<{ newest: Date | null }>;
    return row?.newest ?? null;
  }

  /** The aggregate's buckets ({@link aggregateQuery}); 422 past `maxRows` or on overflow. */
  async aggregate(
    deviceId: ProjectDeviceId,
    q: AggregateQuery,
  ): Promise<Array<{ bucket_start: Date; value: number; count: number }>> {
    const run = (value: string) => this.aggregateQuery(deviceId, q, value);
    let rows;
    try {
      rows = await run(AS_FLOAT8);
    } catch (err) {
      if (sqlState(err) !== '22003') throw err;
      // Either a value no double holds (stored by an older api) or an overflowing sum.
      // The guarded cast tells them apart: only the second still fails.
      rows = await run(AS_FLOAT8_GUARDED).catch((again: unknown) => {
        if (sqlState(again) !== '22003') throw again;
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
      });
    }
    if (Number(rows[0]?.scanned ?? 0) > q.maxRows) {
      throw new AppError(
        'validation_failed',
        `the range holds more than ${q.maxRows} readings of this device (TELEMETRY_AGGREGATE_MAX_ROWS); narrow from-to`,
        [
          {
            field: 'from',
            message: `at most ${q.maxRows} readings per aggregate (TELEMETRY_AGGREGATE_MAX_ROWS)`,
          },
        ],
      );
    }
    return rows
      .filter((r) => r.bucket_start !== null)
      .map((r) => ({
        bucket_start: r.bucket_start!,
        value: Number(r.value),
        count: Number(r.count),
      }));
  }

  /**
   * One query: epoch-aligned buckets with `date_bin`, over readings whose `metric` is a
   * JSON number (strings, booleans and missing values don't count); empty buckets are
   * omitted. It reads at most `maxRows + 1` readings of the range (in key order, so the
   * work is bounded whatever the range) and says how many it read, so a range over the
   * cap is refused rather than cut or scanned in full.
   */
  private aggregateQuery(
    deviceId: string,
    q: AggregateQuery,
    value: string,
  ): Promise<
    Array<{ scanned: string; bucket_start: Date | null; value: string | number; count: string }>
  > {
    const fn = { avg: 'avg', min: 'min', max: 'max', sum: 'sum', count: 'count' }[q.agg];
    return this.dataSource.query(
      `WITH picked AS (
         SELECT ts, data -> $2 AS v FROM telemetry
          WHERE device_id = $1 AND ts >= $3 AND ts < $4
          ORDER BY ts LIMIT $6),
       buckets AS (
         SELECT date_bin(make_interval(secs => $5), ts, TIMESTAMPTZ 'epoch') AS bucket_start,
                ${fn}(${value}) AS value, count(*) AS count
           FROM picked WHERE jsonb_typeof(v) = 'number'
          GROUP BY 1)
       SELECT (SELECT count(*) FROM picked) AS scanned, b.*
         FROM (SELECT 1) one LEFT JOIN buckets b ON true
        ORDER BY b.bucket_start`,
      [
        deviceId,
        q.metric,
        q.from.toISOString(),
        q.to.toISOString(),
        q.bucketSeconds,
        q.maxRows + 1,
      ],
    );
  }
}

/** The metric as a double: the fast cast, for every value an api of ours has let through. */
const AS_FLOAT8 = "(v #>> '{}')::float8";
/**
 * The same without the 22003 a value beyond a double raises (jsonb keeps numbers exactly):
 * below the smallest normal double it counts as 0, as JSON.parse reads it; above the
 * largest, which no api of ours accepts, it is left out. Slower (a numeric cast per row),
 * so only run when the fast one failed.
 */
const AS_FLOAT8_GUARDED = `CASE
    WHEN abs(v::numeric) > 1.7976931348623157e308 THEN NULL
    WHEN abs(v::numeric) < 2.2250738585072014e-308 THEN 0::float8
    ELSE (v #>> '{}')::float8 END`;

/** A jsonb number's text as a finite double, else null (not a number the rules can use). */
/** A row of {@link evaluationColumns}. */
type EvaluationRow = Record<string, unknown> & { ts_ms: number };

/**
 * The select list rule evaluation reads, from a row with `ts` and `data`: the ts as epoch
 * ms, and each metric (parameters from `$first` on) as its JSON text. The database does the
 * jsonb work (one key lookup per metric), and no whole `data` object crosses the wire per
 * row. A JSON number's text is the number (jsonb keeps numbers exactly); any other JSON
 * value's text (`"7"`, `true`, `null`, `{…}`, `[…]`) is not a number to `Number()`, so
 * {@link toNumber} reads only JSON numbers, as the api's JSON.parse did. Text, not
 * ::float8: a cast of a number no double can hold (1e-400, written by an older api) raises
 * 22003 on every later chunk, stalling the device for good. ts as epoch milliseconds:
 * parsing 5,000 timestamptz strings into Dates was a measurable share of the worker's CPU
 * in a bench:rules profile.
 */
function evaluationColumns(metrics: string[], first: number): string {
  return [
    '(extract(epoch FROM ts) * 1000)::float8 AS ts_ms',
    ...metrics.map((_, i) => `(data -> $${i + first})::text AS m${i}`),
  ].join(', ');
}

/**
 * Rows of {@link evaluationColumns} as readings. A plain loop with the column names worked
 * out once: this runs for every stored reading, and `Object.fromEntries` over a mapped
 * array per row was a tenth of the worker's CPU in a bench:e2e profile.
 */
function toEvaluationReadings(rows: EvaluationRow[], metrics: string[]): EvaluationReading[] {
  const columns = metrics.map((_, i) => `m${i}`);
  const readings = new Array<EvaluationReading>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const data: Record<string, number | null> = {};
    for (let i = 0; i < metrics.length; i++) data[metrics[i]] = toNumber(row[columns[i]]);
    readings[r] = { ts: Number(row.ts_ms), data };
  }
  return readings;
}

/** `+ 0`: -0 is 0 (numeric prints `-1e-400` as `-0.000…1`, which `Number()` makes -0). */
function toNumber(text: unknown): number | null {
  if (typeof text !== 'string') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n + 0 : null;
}

/**
 * PostgreSQL text cannot hold NUL, and a refused value may carry one (that may be why it
 * was refused): it is written as a visible escape. (Lone surrogates become U+FFFD on the
 * way to UTF-8.) Unlike ingest's `isStorableText`, which refuses such text with a 422,
 * this must keep it: a rejection is the record of what was refused.
 */
function storable(text: string | null): string | null {
  return text === null ? null : text.replaceAll('\u0000', '\\u0000');
}
