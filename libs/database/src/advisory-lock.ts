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

/** A transaction-scoped lock taken outside a transaction would be released at once. */
function inTransaction(em: EntityManager): void {
  if (!em.queryRunner?.isTransactionActive)
    throw new Error('advisory xact lock outside a transaction');
}

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
  inTransaction(em);
  await em.query(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [lockClass, key]);
}

/** Like {@link lockForTransaction}, but returns false at once when another transaction holds it. */
export async function tryLockForTransaction(
  em: EntityManager,
  lockClass: number,
  key: string,
): Promise<boolean> {
  inTransaction(em);
  const [row] = await em.query(`SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked`, [
    lockClass,
    key,
  ]);
  return row.locked === true;
}

/**
 * A check made in a lock's own statement ({@link tryLockForTransactionUnless}): SQL that
 * is true when the lock must not be taken, its placeholders numbered from `$3`.
 */
export interface LockUnless {
  sql: string;
  params: unknown[];
}

/**
 * {@link tryLockForTransaction} unless `unless` holds, in one statement and one round trip:
 * `declined` when it holds (the lock not tried), else whether the lock was taken. CASE
 * evaluates its condition first and the lock function only in the branch it takes.
 */
export async function tryLockForTransactionUnless(
  em: EntityManager,
  lockClass: number,
  key: string,
  unless: LockUnless,
): Promise<boolean | 'declined'> {
  inTransaction(em);
  const [row] = await em.query(
    `SELECT CASE WHEN ${unless.sql} THEN NULL
                 ELSE pg_try_advisory_xact_lock($1, hashtext($2)) END AS locked`,
    [lockClass, key, ...unless.params],
  );
  return row.locked === null ? 'declined' : row.locked === true;
}
