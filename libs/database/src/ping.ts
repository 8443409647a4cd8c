import { withDeadline } from '@app/common';
import type { DataSource } from 'typeorm';

/** Resolves when PostgreSQL answers `SELECT 1` within `timeoutMs`. */
export async function pingDatabase(dataSource: DataSource, timeoutMs: number): Promise<void> {
  await withDeadline(dataSource.query('SELECT 1'), timeoutMs);
}
