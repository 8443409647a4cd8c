import { AppError } from './app-error';
import { isUuid } from './uuid';

/**
 * Opaque keyset cursors. A cursor is the sort key of the last row a page returned, so a
 * walk never skips or repeats a row when rows are inserted meanwhile (offsets would).
 */
export function encodeCursor(values: Array<string | number>): string {
  return Buffer.from(JSON.stringify(values), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, arity: number): Array<string | number> {
  try {
    if (cursor.length > 512) throw new Error('too long');
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      !Array.isArray(parsed) ||
      parsed.length !== arity ||
      !parsed.every((v) => typeof v === 'string' || typeof v === 'number')
    ) {
      throw new Error('bad shape');
    }
    return parsed as Array<string | number>;
  } catch {
    invalidCursor();
  }
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Builds a page from `limit + 1` fetched rows: the extra row only says "there is more". */
export function toPage<R, T>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
  cursorOf: (row: R) => Array<string | number>,
): Page<T> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  return {
    items: pageRows.map(map),
    next_cursor: hasMore ? encodeCursor(cursorOf(pageRows[pageRows.length - 1])) : null,
  };
}

/**
 * The timestamps our cursors carry: exactly what Date#toISOString wrote for a row's time.
 * A shape check is not enough, since Date.parse also takes 2024-02-31 (as March 2) and
 * year 0000, which PostgreSQL refuses (22008); a round trip takes neither. Rows are all
 * from after 1970, and PostgreSQL reads every year up to 9999.
 */
const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MIN_CURSOR_MS = Date.UTC(1970, 0, 1);

function isCursorTimestamp(ts: unknown): ts is string {
  if (typeof ts !== 'string' || !CURSOR_TS.test(ts)) return false;
  const ms = Date.parse(ts);
  return ms >= MIN_CURSOR_MS && new Date(ms).toISOString() === ts;
}

function invalidCursor(): never {
  throw new AppError('validation_failed', 'cursor is not valid', [
    { field: 'cursor', message: 'cursor is malformed; pass next_cursor from a previous page' },
  ]);
}

/** `[ts]` cursor with a checked timestamp, so a forged one is a 422, never a SQL error. */
export function decodeTimeCursor(cursor: string): string {
  const [ts] = decodeCursor(cursor, 1);
  if (!isCursorTimestamp(ts)) invalidCursor();
  return ts;
}

/** Keyset cursor of rows ordered by (created_at, id); {@link decodeTimeIdCursor} reads it. */
export const createdCursor = (row: { createdAt: Date; id: string }): string[] => [
  row.createdAt.toISOString(),
  row.id,
];

/** `[ts, uuid]` cursor, both checked. */
export function decodeTimeIdCursor(cursor: string): [string, string] {
  const [ts, id] = decodeCursor(cursor, 2);
  if (!isCursorTimestamp(ts) || !isUuid(id)) invalidCursor();
  return [ts, id];
}
