import { buildDataSourceOptions, tryLockForTransactionUnless } from '@app/database';
import { testRunEnv } from '@app/testing';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';

const LOCK_CLASS = 74999;

/**
 * A try-lock with its condition in the same statement: the lock is taken only when the
 * condition is false, and the answer says which of the three it was.
 */
describe('tryLockForTransactionUnless (integration)', () => {
  let db: DataSource;

  beforeAll(async () => {
    db = new DataSource(
      buildDataSourceOptions({ url: testRunEnv().databaseUrl, poolSize: 3 }, 'lock-test'),
    );
    await db.initialize();
  });
  afterAll(() => db?.destroy());

  /** Whether another session could take the lock now (and lets it go again). */
  const free = async (key: string): Promise<boolean> => {
    const runner = db.createQueryRunner();
    try {
      const [row] = await runner.query(`SELECT pg_try_advisory_lock($1, hashtext($2)) AS got`, [
        LOCK_CLASS,
        key,
      ]);
      if (row.got)
        await runner.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [LOCK_CLASS, key]);
      return row.got === true;
    } finally {
      await runner.release();
    }
  };

  const unless = (holds: boolean) => ({ sql: `$3::boolean`, params: [holds] });

  it('declines without trying the lock when the condition holds', async () => {
    const key = randomUUID();
    await db.transaction(async (em) => {
      expect(await tryLockForTransactionUnless(em, LOCK_CLASS, key, unless(true))).toBe('declined');
      expect(await free(key)).toBe(true);
    });
  });

  it('takes the lock for the transaction when the condition does not hold', async () => {
    const key = randomUUID();
    await db.transaction(async (em) => {
      expect(await tryLockForTransactionUnless(em, LOCK_CLASS, key, unless(false))).toBe(true);
      expect(await free(key)).toBe(false);
    });
    expect(await free(key)).toBe(true);
  });

  it('answers false at once while another transaction holds the lock', async () => {
    const key = randomUUID();
    const holder = db.createQueryRunner();
    await holder.startTransaction();
    try {
      await holder.query(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [LOCK_CLASS, key]);
      await db.transaction(async (em) => {
        expect(await tryLockForTransactionUnless(em, LOCK_CLASS, key, unless(false))).toBe(false);
      });
    } finally {
      await holder.rollbackTransaction();
      await holder.release();
    }
  });
});
