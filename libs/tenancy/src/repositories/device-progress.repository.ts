import { asProjectId, ProjectId } from '@app/common';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';

/** What rule evaluation needs of a device. */
export interface EvaluationCursor {
  projectId: ProjectId;
  tags: string[];
  /** Readings after this are new to evaluation; null when none was evaluated. */
  evaluatedUntil: Date | null;
}

/**
 * Where ingestion of a device stands, read under the device row's lock, with what rule
 * evaluation needs of it (the batch's transaction may evaluate it: one read for both).
 * `evaluatedUntil`: what rule evaluation has passed (readings at or before it are "late").
 */
export interface IngestProgress extends EvaluationCursor {
  /** The number of the last batch applied. */
  appliedSeq: number;
}

type CursorRow = { project_id: string; tags: string[]; evaluated_until: Date | null };

const toCursor = (row: CursorRow): EvaluationCursor => ({
  projectId: asProjectId(row.project_id),
  tags: row.tags,
  evaluatedUntil: row.evaluated_until,
});

/** How many devices' external ids a process keeps (then it starts over). */
const EXTERNAL_IDS_KEPT = 10000;

/**
 * The pipeline's side of the `devices` table: the progress columns ingestion and rule
 * evaluation keep per device (`ingest_seq`, `last_seen_at`, `evaluated_until`). Keyed by
 * the device id a job carries (or, for the api's intake, a device it has just resolved in
 * the key's project): no project scope here, which is why this is a class of its own
 * and never given to a controller. The transaction manager comes first where there is one.
 */
@Injectable()
export class DeviceProgressRepository {
  /** Device id → external id, for {@link externalId}. */
  private readonly externalIds = new Map<string, string>();

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Locks the device row for the transaction (batches of a device apply one at a time,
   * across workers) and says where its ingestion stands; null when there is no device.
   */
  async lockForIngest(em: EntityManager, deviceId: string): Promise<IngestProgress | null> {
    const [row] = (await em.query(
      `SELECT ingest_seq, project_id, tags, evaluated_until FROM devices WHERE id = $1 FOR UPDATE`,
      [deviceId],
    )) as Array<CursorRow & { ingest_seq: string }>;
    return row ? { appliedSeq: Number(row.ingest_seq), ...toCursor(row) } : null;
  }

  /**
   * Batch `seq` is applied; the device was last heard from at `acceptedAt` (epoch ms).
   * With `evaluatedUntil`, evaluation has passed it too (never moves back): the batch's
   * transaction evaluated it, and one statement records both.
   */
  async markApplied(
    em: EntityManager,
    deviceId: string,
    seq: number,
    acceptedAt: number,
    evaluatedUntil: Date | null = null,
  ): Promise<void> {
    await em.query(
      `UPDATE devices
          SET ingest_seq = GREATEST(ingest_seq, $2),
              last_seen_at = GREATEST(COALESCE(last_seen_at, '-infinity'), to_timestamp($3 / 1000.0)),
              evaluated_until = GREATEST(evaluated_until, $4::timestamptz)
        WHERE id = $1`,
      [deviceId, seq, acceptedAt, evaluatedUntil?.toISOString() ?? null],
    );
  }

  /**
   * Up to `limit` of a project's devices last heard from in [`from`, `before`) (all before
   * `before` when `from` is null; after (`from`, `afterId`) in (last_seen_at, id) order
   * with `afterId`), oldest first, optionally only those with `tag` or among
   * `ids`; each row locked for the transaction, skipping rows a batch being stored holds
   * (that device is being heard from). Never-heard devices (no `last_seen_at`) are not
   * among them. Reads `devices_project_seen_idx`.
   */
  async quietBetween(
    em: EntityManager,
    q: {
      projectId: string;
      from: Date | null;
      afterId?: string;
      before: Date;
      tag?: string;
      ids?: string[];
    },
    limit: number,
  ): Promise<Array<{ id: string; lastSeenAt: Date }>> {
    return (await em.query(
      `SELECT id, last_seen_at AS "lastSeenAt" FROM devices
        WHERE project_id = $1 AND last_seen_at >= COALESCE($2::timestamptz, '-infinity')
          AND ($7::uuid IS NULL OR (last_seen_at, id) > ($2::timestamptz, $7::uuid))
          AND last_seen_at < $3
          AND ($4::text IS NULL OR $4 = ANY (tags))
          AND ($5::uuid[] IS NULL OR id = ANY ($5::uuid[]))
        ORDER BY last_seen_at, id LIMIT $6
        FOR NO KEY UPDATE SKIP LOCKED`,
      [q.projectId, q.from, q.before, q.tag ?? null, q.ids ?? null, limit, q.afterId ?? null],
    )) as Array<{ id: string; lastSeenAt: Date }>;
  }

  /** The number of the last batch applied for the device (0 when none or no device). */
  async appliedSeq(deviceId: string): Promise<number> {
    const [row] = (await this.dataSource.query(`SELECT ingest_seq FROM devices WHERE id = $1`, [
      deviceId,
    ])) as Array<{ ingest_seq: string }>;
    return Number(row?.ingest_seq ?? 0);
  }

  /**
   * The device's project, tags and evaluation cursor; null when there is no device. With
   * `lock`, the row is locked for the transaction (`FOR NO KEY UPDATE`: it waits for a
   * batch being stored, whose transaction holds the row, to commit).
   */
  async evaluationCursor(
    em: EntityManager,
    deviceId: string,
    opts: { lock?: boolean } = {},
  ): Promise<EvaluationCursor | null> {
    const [row] = (await em.query(
      `SELECT project_id, tags, evaluated_until FROM devices WHERE id = $1${opts.lock ? ' FOR NO KEY UPDATE' : ''}`,
      [deviceId],
    )) as CursorRow[];
    return row ? toCursor(row) : null;
  }

  /** Evaluation has passed `until` (never moves back). */
  async advanceEvaluation(em: EntityManager, deviceId: string, until: Date): Promise<void> {
    await em.query(
      `UPDATE devices SET evaluated_until = GREATEST(COALESCE(evaluated_until, '-infinity'), $2)
        WHERE id = $1`,
      [deviceId, until.toISOString()],
    );
  }

  /**
   * The device's external id, for event payloads; null when there is no device. A
   * device's external id never changes (nothing updates it), so each is read once per
   * process: every alert event asks, inside the transaction that stores a batch.
   */
  async externalId(em: EntityManager, deviceId: string): Promise<string | null> {
    const known = this.externalIds.get(deviceId);
    if (known !== undefined) return known;
    const [row] = (await em.query(`SELECT external_id FROM devices WHERE id = $1`, [
      deviceId,
    ])) as Array<{ external_id: string }>;
    if (!row) return null;
    if (this.externalIds.size >= EXTERNAL_IDS_KEPT) this.externalIds.clear();
    this.externalIds.set(deviceId, row.external_id);
    return row.external_id;
  }
}
