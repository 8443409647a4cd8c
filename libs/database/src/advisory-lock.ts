import type { EntityManager } from 'typeorm';

/**
 * Lock classes (first key of the two-key advisory lock). Persisted in running sessions only;
 * 74032 is the quota lock (quota.ts).
 */
export const LOCK_CLASS = {
  DEVICE_EVALUATION: 74031,
  /** Creating and dropping `telemetry` partitions: one process at a time. */
  TELEMETRY_PARTITIONS: 74033,
  /** A project's retention deletes: one process at a time per project. */
  TELEMETRY_RETENTION: 74034,
} as const;

/**
 * Takes a transaction-scoped advisory lock through the transaction's own EntityManager
 * (a lock taken on another pooled connection would protect nothing), released at commit
 * or rollback.
 */
export async function lockForTransaction(
  em: EntityManager,
  lockClass: number,
  key: string,
): Promise<void> {
  if (!em.queryRunner?.isTransactionActive)
    throw new Error('advisory xact lock outside a transaction');
  await em.query(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [lockClass, key]);
}

/** Like {@link lockForTransaction}, but returns false at once when another transaction holds it. */
export async function tryLockForTransaction(
  em: EntityManager,
  lockClass: number,
  key: string,
): Promise<boolean> {
  if (!em.queryRunner?.isTransactionActive)
    throw new Error('advisory xact lock outside a transaction');
  const [row] = await em.query(`SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked`, [
    lockClass,
    key,
  ]);
  return row.locked === true;
}
