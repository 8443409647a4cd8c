import type { EntityManager } from 'typeorm';

/** Lock classes (first key of the two-key advisory lock). Persisted in running sessions only. */
export const LOCK_CLASS = { DEVICE_EVALUATION: 74031 } as const;

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
