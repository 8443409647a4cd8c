import { classifyFailure } from '@app/common';
import { MetricsService } from '@app/observability';
import { IngestBatchJob, InjectProducer, Producer, QUEUES } from '@app/queue';
import { DeviceProgressRepository } from '@app/tenancy';
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Job, UnrecoverableError } from 'bullmq';
import { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { BATCH_FOLLOWER, BatchFollower, BatchFollowUp } from './batch-follower';
import { IngestBacklog } from './ingest-backlog';
import { ingestJobId } from './telemetry.keys';
import { Rejection, TelemetryRepository, UnsavedFirstTryFailed } from './telemetry.repository';

/**
 * A predecessor batch that is neither queued nor stored this long after our batch was
 * accepted will never come (its enqueue failed after it was numbered): skip its number.
 */
export const SEQ_GAP_GRACE_MS = 30000;

/** How many devices' last applied batch numbers a process keeps (then it starts over). */
const APPLIED_KEPT = 10000;

export type ApplyResult =
  | { kind: 'stored'; inserted: number; late: number; skipped: number; rejected: number }
  | { kind: 'replay'; inserted: number; late: number; rejected: number; applied: number }
  | { kind: 'wait'; missing: number };

/**
 * The worker side of ingestion (the api side is {@link TelemetryIntakeService}): stores
 * the batches the api queued. Batches of one device are applied strictly in the order
 * the api numbered them, however many workers run: the transaction locks the device row,
 * reads the last applied number, and applies a batch only when it is the next one. A
 * batch that arrives early waits (moved to delayed without costing an attempt) until its
 * predecessor is stored, dead-lettered, or provably never queued.
 */
@Injectable()
export class BatchStoreService {
  private readonly logger = new Logger(BatchStoreService.name);
  private readonly batches: Counter<'result'>;
  private readonly events: Counter;
  private readonly gaps: Counter;
  private readonly late: Counter;
  private readonly rejected: Counter<'sqlstate'>;
  private readonly counterResets: Counter;
  private readonly duration: Histogram;
  /**
   * Device id → a batch number this process saw committed for it: a lower bound of the
   * device's `ingest_seq`, which never goes back. A batch numbered at most one past it
   * may be next without asking PostgreSQL (see {@link waitsFor}).
   */
  private readonly appliedSeen = new Map<string, number>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectProducer(QUEUES.TELEMETRY_INGEST)
    private readonly ingestQueue: Producer<typeof QUEUES.TELEMETRY_INGEST>,
    @InjectProducer(QUEUES.RULE_EVALUATION)
    private readonly evaluationQueue: Producer<typeof QUEUES.RULE_EVALUATION>,
    private readonly telemetry: TelemetryRepository,
    private readonly progress: DeviceProgressRepository,
    private readonly backlog: IngestBacklog,
    metrics: MetricsService,
    @Optional() @Inject(BATCH_FOLLOWER) private readonly follower?: BatchFollower,
  ) {
    this.batches = metrics.counter(
      'telemetry_ingest_batches_total',
      'batches by outcome (stored, replay, wait, failed)',
      ['result'],
    );
    // Present from the start, so an alert on its increase sees the first failure.
    this.batches.inc({ result: 'failed' }, 0);
    this.events = metrics.counter(
      'telemetry_ingest_events_stored_total',
      'rows inserted (duplicates excluded)',
    );
    this.gaps = metrics.counter(
      'telemetry_ingest_sequence_gaps_total',
      'batch numbers skipped because their batch never reached the queue or was dead-lettered',
    );
    this.late = metrics.counter(
      'telemetry_late_readings_total',
      'readings stored with a ts at or before what was already evaluated for the device (not evaluated)',
    );
    this.rejected = metrics.counter(
      'telemetry_rejected_readings_total',
      'accepted readings storage refused, set aside in telemetry_rejections (a whole batch counts once)',
      ['sqlstate'],
    );
    this.counterResets = metrics.counter(
      'telemetry_ingest_counter_behind_total',
      'batches numbered below what PostgreSQL had applied (a Redis that lost its counter); the counter is raised',
    );
    this.duration = metrics.histogram(
      'telemetry_ingest_batch_duration_seconds',
      'time to store one batch',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
  }

  /**
   * Applies one batch; throws to be retried, returns `wait` to be delayed. A batch that
   * storage refuses as a whole (a value PostgreSQL cannot hold) is applied again
   * salvaging: every event that can be stored is, the rest are set aside as rejections,
   * and the batch counts as applied, so the device's later batches never wait on it.
   */
  async apply(job: Job<IngestBatchJob>): Promise<ApplyResult> {
    const end = this.duration.startTimer();
    const missing = await this.waitsFor(job.data);
    if (missing !== null) {
      end();
      this.batches.inc({ result: 'wait' });
      return { kind: 'wait', missing };
    }
    // Read before the transaction, so no lock waits on Redis.
    const body = await this.bodyOf(job.data);
    let result: ApplyResult;
    let followUp: BatchFollowUp | null;
    try {
      try {
        [result, followUp] = await this.applyInOrder(job, body, 'fast');
      } catch (err) {
        if (!(err instanceof UnsavedFirstTryFailed)) throw err;
        [result, followUp] = await this.applyInOrder(job, body, 'savepoint');
      }
    } catch (err) {
      if (classifyFailure(err) !== 'data') throw err;
      [result, followUp] = await this.applyInOrder(job, body, 'salvage');
    }
    end();
    this.batches.inc({ result: result.kind });
    if (result.kind === 'wait') return result;
    const { deviceId, seq } = job.data;
    this.sawApplied(deviceId, seq);
    this.events.inc(result.inserted);
    if (result.late > 0) this.late.inc(result.late);
    if (result.kind === 'stored' && result.skipped > 0) {
      this.gaps.inc(result.skipped);
      this.logger.warn(
        { deviceId, seq, skipped: result.skipped },
        'skipped batch numbers that never reached the queue',
      );
    }
    if (result.kind === 'replay' && result.inserted > 0) await this.counterBehind(job, result);
    // Evaluated in the transaction that stored it: its alerts' webhooks go first, before
    // the backlog's bookkeeping (a reading's webhook waits for nothing it doesn't need).
    if (followUp) await followUp.committed();
    await this.release(job);
    // The device's next batch may be waiting behind the backlog, or delayed after it came
    // too early: it goes next, not after the whole backlog (a failure here costs only time:
    // its own timer, or its turn in the queue, brings it back).
    await this.ingestQueue.hurry(ingestJobId(deviceId, seq + 1)).catch(() => false);
    if (followUp) return result;
    // Otherwise one evaluation job per stored batch. Jobs are small and an evaluation reads
    // everything new since the device's cursor, so an extra one finds nothing to do; a
    // coalescing job id would drop the request made while an evaluation is running.
    await this.evaluationQueue.add('evaluate-device', {
      projectId: job.data.projectId,
      deviceId,
      acceptedAt: job.data.acceptedAt,
      correlationId: job.data.correlationId,
    });
    return result;
  }

  /**
   * The number this batch waits for, read without the device's row lock; null when it may
   * be next (the transaction decides, under the lock). A batch that is early steps aside
   * at once instead of queueing on the lock behind the batch being stored: under a
   * backlog, one device's out-of-order batches otherwise took every worker slot in turn,
   * each waiting on the lock only to learn it was not next.
   */
  private async waitsFor({
    deviceId,
    seq,
    acceptedAt,
  }: Pick<IngestBatchJob, 'deviceId' | 'seq' | 'acceptedAt'>): Promise<number | null> {
    // A device's batches mostly follow each other through one process: its own record
    // of the last one saves the read (the transaction checks under the lock all the same).
    if (seq <= (this.appliedSeen.get(deviceId) ?? -1) + 1) return null;
    const applied = await this.progress.appliedSeq(deviceId);
    if (seq <= applied + 1) return null;
    return (await this.predecessorIsGone(deviceId, applied + 1, acceptedAt)) ? null : applied + 1;
  }

  private sawApplied(deviceId: string, seq: number): void {
    if (seq <= (this.appliedSeen.get(deviceId) ?? 0)) return;
    if (this.appliedSeen.size >= APPLIED_KEPT && !this.appliedSeen.has(deviceId))
      this.appliedSeen.clear();
    this.appliedSeen.set(deviceId, seq);
  }

  /** Whether the batch must still wait for its predecessor (read without a lock). */
  async isEarly(batch: Pick<IngestBatchJob, 'deviceId' | 'seq' | 'acceptedAt'>): Promise<boolean> {
    return (await this.waitsFor(batch)) !== null;
  }

  /**
   * The batch's body: in the job (queued by an earlier version) or in its own key (see
   * {@link IngestBacklog.bodyKey}); null when it is gone. It goes once the batch is applied
   * (with its place in the backlog), so a batch run again after that (a worker that died
   * before BullMQ heard it was done) finds none, and needs none: it is a replay.
   */
  private async bodyOf(batch: IngestBatchJob): Promise<string | Buffer | null> {
    if (batch.payload !== undefined) return batch.payload || null;
    return this.backlog.body(batch.projectId, batch.batchId);
  }

  /**
   * The batch in one transaction, with its follow-up (rule evaluation) when there is one
   * and the batch can take it; a salvaged batch never does (its evaluation is queued).
   * `fast`: a batch the follow-up takes, whose events are all new and in order, is stored
   * without a savepoint ({@link TelemetryRepository.insertBatch}); `savepoint` is the run
   * again when that failed; `salvage` stores what it can of a batch storage refused.
   */
  private applyInOrder(
    job: Job<IngestBatchJob>,
    payload: string | Buffer | null,
    mode: 'fast' | 'savepoint' | 'salvage',
  ): Promise<[ApplyResult, BatchFollowUp | null]> {
    const { projectId, deviceId, batchId, seq, acceptedAt } = job.data;
    return this.dataSource.transaction(async (em): Promise<[ApplyResult, BatchFollowUp | null]> => {
      // The row lock serialises batches of this device across workers (a second worker
      // blocks here until the first commits); different devices never wait for each other.
      const progress = await this.progress.lockForIngest(em, deviceId);
      if (!progress) throw new UnrecoverableError(`device ${deviceId} does not exist`);
      let applied = progress.appliedSeq;
      let skipped = 0;
      while (seq > applied + 1) {
        if (!(await this.predecessorIsGone(deviceId, applied + 1, acceptedAt))) {
          return [{ kind: 'wait', missing: applied + 1 }, null];
        }
        applied++;
        skipped++;
      }
      if (payload === null) {
        if (seq <= applied)
          return [{ kind: 'replay', inserted: 0, late: 0, rejected: 0, applied }, null];
        // Never seen in a healthy Redis: the body goes only with the batch's place in the
        // backlog, after the batch is applied, or an hour after an enqueue the api gave up on.
        throw new UnrecoverableError(
          'the batch body is no longer in Redis (an enqueue answered 503, or Redis lost data)',
        );
      }
      let rejections: Rejection[] = [];
      let stored: { inserted: number; late: number };
      let followUp: BatchFollowUp | null = null;
      let evaluatedUntil: Date | null = null;
      if (mode === 'salvage') {
        const salvaged = await this.telemetry.insertSalvaging(
          em,
          deviceId,
          payload.toString(),
          progress.evaluatedUntil,
        );
        rejections = salvaged.rejected;
        stored = salvaged;
        await this.telemetry.recordRejections(em, { projectId, deviceId, batchId }, rejections);
      } else {
        followUp =
          (await this.follower?.prepare(em, { id: deviceId, ...progress }, acceptedAt)) ?? null;
        const batch = await this.telemetry.insertBatch(
          em,
          deviceId,
          payload,
          progress.evaluatedUntil,
          followUp?.metrics,
          // A follow-up's readings are all the device's unevaluated ones: none is stored
          // after the cursor.
          mode === 'fast' && followUp !== null,
        );
        if (followUp) evaluatedUntil = await followUp.apply(em, batch.readings ?? []);
        stored = batch;
      }
      await this.progress.markApplied(em, deviceId, seq, acceptedAt, evaluatedUntil);
      if (rejections.length > 0) this.reportRejections(job, rejections);
      const counts = { inserted: stored.inserted, late: stored.late, rejected: rejections.length };
      const result: ApplyResult =
        seq <= applied
          ? { kind: 'replay', ...counts, applied }
          : { kind: 'stored', ...counts, skipped };
      return [result, followUp];
    });
  }

  /**
   * A batch numbered at or below what was applied, yet with readings never stored: not a
   * replay but a batch numbered by a counter that went back (Redis failed over to a
   * replica that had not seen the latest numbers). Stored, but out of order; the counter is
   * raised so the device's next batches are numbered after what PostgreSQL has.
   */
  private async counterBehind(
    job: Job<IngestBatchJob>,
    result: { inserted: number; applied: number },
  ): Promise<void> {
    const { projectId, deviceId, seq } = job.data;
    const raised = await this.backlog.raiseCounter(projectId, deviceId, result.applied);
    this.counterResets.inc();
    this.logger.warn(
      { deviceId, seq, applied: result.applied, inserted: result.inserted, raised },
      'a batch was numbered below what was already applied (Redis lost its counter): stored out of order; counter raised',
    );
  }

  private reportRejections(job: Job<IngestBatchJob>, rejections: Rejection[]): void {
    for (const r of rejections) this.rejected.inc({ sqlstate: r.sqlstate ?? 'none' });
    this.logger.warn(
      {
        batchId: job.data.batchId,
        deviceId: job.data.deviceId,
        rejected: rejections.length,
        reason: rejections[0].reason,
      },
      'readings storage refused were set aside (telemetry_rejections); the rest of the batch is stored',
    );
  }

  /**
   * Gives the batch's place in the backlog back (stored or set aside), and deletes its
   * body; once per batch.
   */
  async release(job: Job<IngestBatchJob>): Promise<void> {
    await this.backlog.release(job.data);
  }

  /**
   * Called when a batch exhausted its attempts (an unexpected error, never an outage):
   * counted, logged, and its body moved to `telemetry_rejections` so the project can see
   * it and the failed job in Redis keeps only ids. Later batches of the device skip it.
   */
  async deadLettered(job: Job<IngestBatchJob>, err: Error): Promise<void> {
    this.batches.inc({ result: 'failed' });
    this.logger.error(
      {
        batchId: job.data.batchId,
        deviceId: job.data.deviceId,
        seq: job.data.seq,
        attempts: job.attemptsMade,
        err: err.message,
      },
      'telemetry batch failed for good; set aside in telemetry_rejections',
    );
    const { projectId, deviceId, batchId } = job.data;
    const body = await this.bodyOf(job.data);
    // Recorded even when the body is gone, so the project sees what happened to the batch.
    // One that was emptied already was set aside on an earlier failure.
    if (body !== null || job.data.payload === undefined) {
      const rejection: Rejection & { payload?: string } = {
        index: -1,
        ts: null,
        reading: null,
        payload: body?.toString(),
        reason: `failed after ${job.attemptsMade} attempts: ${err.message}`.slice(0, 2000),
        sqlstate: null,
      };
      await this.dataSource.transaction((em) =>
        this.telemetry.recordRejections(em, { projectId, deviceId, batchId }, [rejection]),
      );
      this.rejected.inc({ sqlstate: 'none' });
      if (job.data.payload) await job.updateData({ ...job.data, payload: '' });
    }
    await this.release(job);
  }

  private async predecessorIsGone(
    deviceId: string,
    seq: number,
    acceptedAt: number,
  ): Promise<boolean> {
    const state = await this.ingestQueue.getJobState(ingestJobId(deviceId, seq));
    if (state === 'failed') return true; // dead-lettered: later batches must not wait forever
    if (state === 'unknown' || state === 'completed')
      return Date.now() - acceptedAt > SEQ_GAP_GRACE_MS;
    return false; // waiting, delayed, active or prioritized: it will come
  }
}
