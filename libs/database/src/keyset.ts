import { decodeTimeIdCursor } from '@app/common';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';

/**
 * A keyset page on (`column`, id), a timestamp column and the id: the row-value
 * comparison uses the (…, column, id) indexes and never skips or repeats a row while rows
 * are inserted. The cursor is the last row's pair (`createdCursor` or the like). Fetches
 * `limit + 1` rows; `toPage()` turns the extra one into `next_cursor`.
 */
export function keysetPage<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  key: { column: string; order: 'ASC' | 'DESC' },
  limit: number,
  cursor?: string,
): Promise<T[]> {
  const a = qb.alias;
  qb.orderBy(`${a}.${key.column}`, key.order).addOrderBy(`${a}.id`, key.order);
  if (cursor) {
    const [at, id] = decodeTimeIdCursor(cursor);
    const op = key.order === 'ASC' ? '>' : '<';
    qb.andWhere(`(${a}.${key.column}, ${a}.id) ${op} (:keysetAt, :keysetId)`, {
      keysetAt: at,
      keysetId: id,
    });
  }
  return qb.limit(limit + 1).getMany();
}

/** Oldest first by (created_at, id): every list of tenancy, rules and webhooks. */
export function pageByCreated<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  limit: number,
  cursor?: string,
): Promise<T[]> {
  return keysetPage(qb, { column: 'created_at', order: 'ASC' }, limit, cursor);
}
