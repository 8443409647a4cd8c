import type { EvaluationCursor } from '@app/tenancy';
import type { EntityManager } from 'typeorm';
import type { EvaluationReading } from './telemetry.repository';

/**
 * Work that joins a batch's storing transaction: the worker wires rule evaluation in here
 * (`EvaluationService` in libs/rules, which depends on this lib, not the other way round),
 * so a batch is stored and evaluated in one transaction from the rows the INSERT returns,
 * with no read-back and no second job.
 */
export const BATCH_FOLLOWER = Symbol('BATCH_FOLLOWER');

export interface BatchFollower {
  /**
   * Called in the batch's transaction, under the device row's lock, before the insert,
   * with the device as that lock read it. Null when the batch cannot be followed here (say
   * another evaluator holds the device, or readings stored earlier still wait for
   * evaluation): the batch then gets a `rule-evaluation` job, as without a follower.
   * `acceptedAt`: when the api accepted the batch (epoch ms), for the evaluation lag.
   */
  prepare(
    em: EntityManager,
    device: { id: string } & EvaluationCursor,
    acceptedAt: number,
  ): Promise<BatchFollowUp | null>;
}

export interface BatchFollowUp {
  /** The metrics the follow-up reads from each stored reading. */
  readonly metrics: string[];
  /**
   * In the same transaction, after the insert: the readings the batch stored after the
   * device's evaluation cursor, in ts order. These are all the device's unevaluated
   * readings: {@link BatchFollower.prepare} made sure that none was stored after the
   * cursor (the batch's insert relies on it). Returns what evaluation
   * has now passed (the last reading's ts; null for none), which the caller records with
   * the batch's progress, in the same statement.
   */
  apply(em: EntityManager, readings: EvaluationReading[]): Promise<Date | null>;
  /** Once the transaction committed (logging, handing events on). Never throws. */
  committed(): Promise<void>;
}
