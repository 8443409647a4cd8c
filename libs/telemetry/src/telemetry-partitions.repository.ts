import { LOCK_CLASS, quoteIdent, tryLockForTransaction } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { PartitionBounds } from './partition-plan';

/** A partition of `telemetry` as the catalog has it. */
export interface TelemetryPartition extends PartitionBounds {
  /** A `DETACH … CONCURRENTLY` was cut short: it must be finished with FINALIZE. */
  detachPending: boolean;
}

/**
 * The partitions of `telemetry` (this lib owns the table) and deletes past a project's
 * retention: the maintenance duty's SQL, apart from the device path of
 * {@link TelemetryRepository}. Methods without a tenant are deliberate: partitions are
 * the whole table's, and the retention delete is handed the devices of one project.
 */
@Injectable()
export class TelemetryPartitionsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * The partitions, oldest first. Bounds come from the catalog's text of each bound, cast
   * back to timestamptz in the same session (so in its time zone, whatever it is);
   * MINVALUE and MAXVALUE are null.
   */
  async list(em: EntityManager = this.dataSource.manager): Promise<TelemetryPartition[]> {
    return (await em.query(
      `SELECT c.relname AS name,
              (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$FROM \\('([^']+)'\\)$$))[1]::timestamptz AS "from",
              (regexp_match(pg_get_expr(c.relpartbound, c.oid), $$TO \\('([^']+)'\\)$$))[1]::timestamptz AS "to",
              i.inhdetachpending AS "detachPending"
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'telemetry'::regclass
        ORDER BY 2 NULLS FIRST`,
    )) as TelemetryPartition[];
  }

  /**
   * Creates a partition as a table of its own, then attaches it: `CREATE TABLE … PARTITION
   * OF` would lock `telemetry` against every read and insert meanwhile, ATTACH takes a lock
   * they pass (it checks the new, empty table against its bound).
   */
  async create(em: EntityManager, p: PartitionBounds): Promise<void> {
    const name = quoteIdent(p.name);
    const bound = (t: Date | null, open: string) => (t ? `'${t.toISOString()}'` : open);
    await em.query(`CREATE TABLE ${name} (LIKE telemetry INCLUDING ALL)`);
    await em.query(
      `ALTER TABLE telemetry ATTACH PARTITION ${name}
         FOR VALUES FROM (${bound(p.from, 'MINVALUE')}) TO (${bound(p.to, 'MAXVALUE')})`,
    );
  }

  /**
   * {@link create} in a savepoint of `em`'s transaction: a partition that can't be created
   * (a table of its name left behind) is given back as the error, and the transaction
   * goes on with the others.
   */
  async tryCreate(em: EntityManager, p: PartitionBounds): Promise<Error | undefined> {
    await em.query('SAVEPOINT partition_create');
    try {
      await this.create(em, p);
      await em.query('RELEASE SAVEPOINT partition_create');
      return undefined;
    } catch (err) {
      await em.query('ROLLBACK TO SAVEPOINT partition_create');
      return err as Error;
    }
  }

  /**
   * Runs `fn` while this process holds the partition maintenance lock, taken by a
   * transaction of its own that stays open meanwhile, for statements that can't run in a
   * transaction (DETACH … CONCURRENTLY). Undefined, without running `fn`, when another
   * process holds the lock.
   */
  async whileLocked<T>(fn: () => Promise<T>): Promise<T | undefined> {
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.startTransaction();
      if (
        !(await tryLockForTransaction(runner.manager, LOCK_CLASS.TELEMETRY_PARTITIONS, 'telemetry'))
      )
        return undefined;
      // The server must not end this transaction as idle while `fn` runs. And the lock's
      // statement, sent with parameters, keeps its snapshot while its (unnamed) portal
      // lives, which a DETACH … FINALIZE waits for: this statement, sent without, replaces
      // that portal with one holding none.
      await runner.query('SET LOCAL idle_in_transaction_session_timeout = 0');
      return await fn();
    } finally {
      // The transaction held nothing else; if its connection died meanwhile, so did it.
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      await runner.release();
    }
  }

  /**
   * Detaches a partition without locking out reads and inserts (outside any transaction:
   * CONCURRENTLY commits twice), then drops it. A detach cut short is finished instead.
   * Between the two statements the partition is a table of its own: a process killed
   * right there leaves it behind (docs/operations.md).
   */
  async detachAndDrop(p: TelemetryPartition): Promise<void> {
    const name = quoteIdent(p.name);
    await this.dataSource.query(
      `ALTER TABLE telemetry DETACH PARTITION ${name} ${p.detachPending ? 'FINALIZE' : 'CONCURRENTLY'}`,
    );
    await this.dataSource.query(`DROP TABLE ${name}`);
  }

  /**
   * Deletes up to `limit` readings of `devices` older than `before` from one partition:
   * one short transaction's worth (the caller's), found through the key and deleted by
   * row address (a TID scan), so no lock is held long and nothing else is read.
   */
  async deleteOlder(
    em: EntityManager,
    partition: string,
    devices: string[],
    before: Date,
    limit: number,
  ): Promise<number> {
    const name = quoteIdent(partition);
    const [, deleted] = (await em.query(
      `DELETE FROM ${name} WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM ${name} WHERE device_id = ANY ($1::uuid[]) AND ts < $2 LIMIT $3))`,
      [devices, before.toISOString(), limit],
    )) as [unknown, number];
    return deleted;
  }
}
