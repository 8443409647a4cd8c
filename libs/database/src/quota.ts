import { AppError } from '@app/common';
import type { DeepPartial, EntityManager, ObjectLiteral, Repository } from 'typeorm';
import { lockForTransaction } from './advisory-lock';

/** Lock class of quota checks (first key of the two-key advisory lock). */
const QUOTA_LOCK_CLASS = 74032;

export interface Quota {
  /**
   * The project-owned table counted (each has an index leading with project_id); its
   * limit is set by QUOTA_<TABLE>_PER_PROJECT, which the refusal names.
   */
  table: 'rules' | 'webhooks' | 'devices';
  projectId: string;
  limit: number;
  /** Checked under the lock before refusing: true means the row is already there. */
  unless?: () => Promise<boolean>;
}

/**
 * Refuses (422 naming the quota) when the project already has `limit` rows in `table`.
 * Call inside the transaction that inserts: the transaction lock serialises creations of
 * one project and table, so concurrent requests can't all see room for one more.
 */
export async function assertUnderQuota(em: EntityManager, quota: Quota): Promise<void> {
  await lockForTransaction(em, QUOTA_LOCK_CLASS, `${quota.table}:${quota.projectId}`);
  const [{ n }] = (await em.query(
    `SELECT count(*)::int AS n FROM ${quota.table} WHERE project_id = $1`,
    [quota.projectId],
  )) as Array<{ n: number }>;
  if (n >= quota.limit && !(await quota.unless?.())) {
    const what = quota.table;
    const variable = `QUOTA_${what.toUpperCase()}_PER_PROJECT`;
    throw new AppError(
      'validation_failed',
      `this project has reached its quota of ${quota.limit} ${what} (${variable}); delete some first`,
      [{ field: what, message: `at most ${quota.limit} ${what} per project (${variable})` }],
    );
  }
}

/** Saves a new row of `repository`'s table in a transaction that checks the quota first. */
export function saveUnderQuota<T extends ObjectLiteral>(
  repository: Repository<T>,
  quota: Quota,
  values: DeepPartial<NoInfer<T>>,
): Promise<T> {
  return repository.manager.transaction(async (em) => {
    await assertUnderQuota(em, quota);
    const repo: Repository<T> = em.getRepository<T>(repository.target);
    const row: T = repo.create(values);
    return repo.save(row);
  });
}
