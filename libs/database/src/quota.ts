import { AppError } from '@app/common';
import type {
  DeepPartial,
  EntityManager,
  FindOptionsWhere,
  ObjectLiteral,
  Repository,
} from 'typeorm';
import { lockForTransaction } from './advisory-lock';

/** Lock class of quota checks (first key of the two-key advisory lock). */
const QUOTA_LOCK_CLASS = 74032;

export interface Quota {
  /** What is counted; its limit is QUOTA_<WHAT>_PER_PROJECT, which the refusal names. */
  what: 'rules' | 'webhooks' | 'devices';
  projectId: string;
  limit: number;
  /**
   * The project's rows now, counted in the transaction by the lib that owns them (this
   * lib names no feature table).
   */
  count: (em: EntityManager) => Promise<number>;
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
  const n = await quota.count(em);
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
 * checks the quota first, counting the project's rows of that entity.
 */
export function saveUnderQuota<T extends ObjectLiteral & { projectId: string }>(
  repository: Repository<T>,
  quota: Omit<Quota, 'count'>,
  values: DeepPartial<NoInfer<T>>,
): Promise<T> {
  const count = (em: EntityManager) =>
    em
      .getRepository<T>(repository.target)
      .countBy({ projectId: quota.projectId } as FindOptionsWhere<T>);
  return repository.manager.transaction(async (em) => {
    await assertUnderQuota(em, { ...quota, count });
    const repo: Repository<T> = em.getRepository<T>(repository.target);
    const row: T = repo.create(values);
    return repo.save(row);
  });
}
