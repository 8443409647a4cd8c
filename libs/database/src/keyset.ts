import { decodeTimeIdCursor } from '@app/common';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';

/**
 * Oldest-first keyset page on (created_at, id): the row-value comparison uses the
 * (…, created_at, id) indexes and never skips or repeats a row while rows are inserted.
 * Fetches `limit + 1` rows; `toPage()` turns the extra one into `next_cursor`.
 */
export function pageByCreated<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  limit: number,
  cursor?: string,
): Promise<T[]> {
  const alias = qb.alias;
  qb.orderBy(`${alias}.created_at`, 'ASC').addOrderBy(`${alias}.id`, 'ASC');
  if (cursor) {
    const [createdAt, id] = decodeTimeIdCursor(cursor);
    qb.andWhere(`(${alias}.created_at, ${alias}.id) > (:createdAt, :id)`, { createdAt, id });
  }
  return qb.limit(limit + 1).getMany();
}
