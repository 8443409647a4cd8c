import { AppError } from '@app/common';
import type { DeepPartial, EntityManager, EntityTarget, ObjectLiteral, Repository } from 'typeorm';
import { lockForTransaction } from './advisory-lock';

/** Lock class of quota checks (first key of the two-key advisory lock). */
const QUOTA_LOCK_CLASS = 74032;

export interface Quota {
  /** What is counted; its limit is QUOTA_<WHAT>_PER_PROJECT, which the refusal names. */
  what: 'rules' | 'webhooks' | 'devices';
  projectId: string;
  limit: number;
  /**
   * The owning lib's entity (one with a `projectId`), whose rows of the project are counted
   * in the transaction: this lib names no feature table.
   */
  entity: EntityTarget<{ projectId: string }>;
  /** Checked under the lock before refusing: true means the row is already there. */
  unless?: () => Promise<boolean>;
}

/**
 * Refuses (422 naming the quota) when the project already has `limit` of `what`.
 * Call inside the transaction that inserts: the transaction lock serialises creations of
 * one project and table, so concurrent requests can't all see room for one more.
 */
export async function assertUnderQuota(em: EntityManager, quota: Quota): Promise<void> {
  await lockForTransaction(em, QUOTA_LOCK_CLASS, `${quota.what}:${quota.projectId}`);
  const n = await em.getRepository(quota.entity).countBy({ projectId: quota.projectId });
  if (n >= quota.limit && !(await quota.unless?.())) {
    const what = quota.what;
    const variable = `QUOTA_${what.toUpperCase()}_PER_PROJECT`;
    throw new AppError(
      'validation_failed',
      `this project has reached its quota of ${quota.limit} ${what} (${variable}); delete some first`,
      [{ field: what, message: `at most ${quota.limit} ${what} per project (${variable})` }],
    );
  }
}

/**
 * Saves a new row of `repository`'s entity (one with a `projectId`) in a transaction that
 * checks the quota on that entity first.
 */
export function saveUnderQuota<T extends ObjectLiteral & { projectId: string }>(
  repository: Repository<T>,
  quota: Omit<Quota, 'entity'>,
  values: DeepPartial<NoInfer<T>>,
): Promise<T> {
  return repository.manager.transaction(async (em) => {
    await assertUnderQuota(em, { ...quota, entity: repository.target });
    const repo: Repository<T> = em.getRepository<T>(repository.target);
    const row: T = repo.create(values);
    return repo.save(row);
  });
}
