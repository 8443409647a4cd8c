import { AppError, ProjectId, validationFailed, withDeadline } from '@app/common';
import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { IngestBatchJob, InjectProducer, Producer, QUEUES } from '@app/queue';
import { failOpenWithin, RedisService } from '@app/redis';
import { DeviceProgressRepository, DevicesRepository, ProjectsRepository } from '@app/tenancy';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { LRUCache } from 'lru-cache';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { Counter } from 'prom-client';
import { ABANDONED_BODY_MS, IngestBacklog } from './ingest-backlog';
import { needsNormalising, validateIngestBody } from './ingest-validator';
import { PlainBatch } from './plain-batch';
import { ENQUEUE_DEADLINE_MS } from './telemetry.constants';
import { ingestJobId, takenNumberJobId } from './telemetry.keys';

/** A validated batch: what the client is told, and the bytes queued for the worker. */
interface AcceptedBatch extends PlainBatch {
  queued: Buffer;
}

/** Device ids kept per api replica, least recently used dropped first. */
const DEVICE_CACHE_MAX = 50000;
/** How many numbers in use an admission skips before it takes an id of its own. */
const TAKEN_NUMBER_TRIES = 20;
const BACKLOG_CHECK_MS = 500;
/**
 * The api side of ingestion (`POST /telemetry`): validate, resolve the device, number the
 * batch, queue it. A 202 is only sent after BullMQ has stored the job in Redis. The
 * worker side, which stores the queued batches, is {@link BatchStoreService}.
 */
@Injectable()
export class TelemetryIntakeService {
  private readonly logger = new Logger(TelemetryIntakeService.name);
  /** (project, external id) → device id. Devices are never deleted, so entries never go stale. */
  private readonly deviceIds = new LRUCache<string, string>({ max: DEVICE_CACHE_MAX });
  private sampled?: { checkedAt: number; full: boolean; retryAfter: number };
  private backlogCheck?: Promise<void>;
  private readonly accepted: Counter<'result'>;
  private readonly acceptedEvents: Counter;
  private readonly limits: AppConfig['ingest'];
  private readonly quotas: AppConfig['quotas'];

  constructor(
    @InjectProducer(QUEUES.TELEMETRY_INGEST)
    private readonly producer: Producer<typeof QUEUES.TELEMETRY_INGEST>,
    private readonly redis: RedisService,
    private readonly devices: DevicesRepository,
    private readonly projects: ProjectsRepository,
    private readonly progress: DeviceProgressRepository,
    private readonly backlog: IngestBacklog,
    config: ConfigService<AppConfig, true>,
    metrics: MetricsService,
  ) {
    this.limits = config.get('ingest', { infer: true });
    this.quotas = config.get('quotas', { infer: true });
    this.accepted = metrics.counter('telemetry_ingest_requests_total', 'POST /telemetry outcomes', [
      'result',
    ]);
    this.acceptedEvents = metrics.counter(
      'telemetry_ingest_events_accepted_total',
      'events in batches answered 202 (queued)',
    );
  }

  /**
   * `raw` is the request body exactly as received; it is what gets queued once `body` (its
   * parse) validates. Queuing the raw bytes spares the api a second JSON.stringify of
   * 5,000 events and the worker a parse/stringify round trip: the worker cuts the rows
   * PostgreSQL stores from them. PostgreSQL reads them as jsonb, which keeps the last of
   * duplicated keys exactly as JSON.parse does, so it stores what was validated. Where the
   * bytes could be read differently (another charset; bytes that are not valid UTF-8, which
   * the parse read as replacement characters; number literals beyond a double) or the parse
   * was changed (a `ts` offset PostgreSQL refuses, rewritten to UTC), the parse is
   * re-serialised instead. A leading BOM is dropped (jsonb refuses it).
   *
   * `plain`: the body was read from `raw` alone ({@link readPlainBatch}) and never parsed;
   * what it says is what the validation of its parse would have said.
   */
  async accept(
    projectId: ProjectId,
    request: { body: unknown; raw?: Buffer; plain?: PlainBatch; correlationId: string },
  ): Promise<{ accepted: number; batch_id: string; non_numeric_values: number }> {
    const { raw, correlationId } = request;
    const batch =
      request.plain && raw ? this.plainBatch(request.plain, raw) : this.checked(request.body, raw);
    await this.refuseWhenBacklogFull();
    const deviceId = await this.resolveDevice(projectId, batch.deviceExternalId);
    const batchId = randomUUID();
    await this.enqueue(projectId, deviceId, batchId, batch.events, batch.queued, correlationId);
    this.accepted.inc({ result: 'accepted' });
    this.acceptedEvents.inc(batch.events);
    return { accepted: batch.events, batch_id: batchId, non_numeric_values: batch.nonNumeric };
  }

  /** A parsed body, validated, and the bytes to queue for it (see {@link accept}). */
  private checked(body: unknown, raw: Buffer | undefined): AcceptedBatch {
    const checked = validateIngestBody(body);
    if (!checked.ok) {
      this.accepted.inc({ result: 'invalid' });
      if (checked.tooMany)
        throw new AppError(
          'payload_too_large',
          'a batch holds at most 5000 events',
          checked.details,
        );
      throw validationFailed(checked.details);
    }
    return {
      deviceExternalId: checked.body.device_external_id,
      events: checked.body.events.length,
      nonNumeric: checked.nonNumeric,
      queued:
        checked.rewritten || raw === undefined || !isUtf8(raw) || needsNormalising(raw)
          ? Buffer.from(JSON.stringify(checked.body), 'utf8')
          : withoutBom(raw),
    };
  }

  /**
   * A body read without its parse: ASCII, so valid UTF-8 without a BOM, and nothing in it
   * rewritten. A number literal beyond a double still needs its parse re-serialised (rare:
   * the parse happens only then).
   */
  private plainBatch(plain: PlainBatch, raw: Buffer): AcceptedBatch {
    const queued = needsNormalising(raw)
      ? Buffer.from(JSON.stringify(JSON.parse(raw.toString('latin1'))), 'utf8')
      : raw;
    return { ...plain, queued };
  }

  /**
   * Numbers the batch per device and counts it against the project's backlog share (one
   * script: {@link IngestBacklog.admit}), then stores the job. These steps share one
   * deadline: Redis that is down or slow means 503, never a hang. A deadline that fires
   * after Redis took the job leaves a batch the client will resend: harmless, because the
   * worker stores each (device, ts) once. A device without a counter (new, idle for a
   * month, or a Redis that lost it) is numbered after the last batch PostgreSQL applied.
   */
  private async enqueue(
    projectId: ProjectId,
    deviceId: string,
    batchId: string,
    events: number,
    body: Buffer,
    correlationId: string,
  ): Promise<void> {
    const acceptedAt = Date.now();
    let admittedSeq: number | undefined;
    try {
      await withDeadline(
        (async () => {
          const batch = { projectId, deviceId, batchId, body, acceptedAt, jobKey: this.jobKey };
          let admission = await this.backlog.admit(batch);
          if (admission.kind === 'unseeded') {
            const floor = await this.progress.appliedSeq(deviceId);
            admission = await this.backlog.admit({ ...batch, floor });
          }
          // A number whose job is still in Redis: the counter went back (a failover to a
          // lagging replica). BullMQ would ignore the add and drop the batch, so skip past
          // the numbers in use; a few tries, then an id of its own.
          for (let tries = 0; admission.kind === 'admitted' && admission.jobIdTaken; tries++) {
            if (tries === TAKEN_NUMBER_TRIES) break;
            this.logger.warn(
              { deviceId, seq: admission.seq },
              'batch number in use: counter behind',
            );
            await this.backlog.release({ projectId, deviceId, batchId, seq: admission.seq });
            admission = await this.backlog.admit({ ...batch, floor: admission.seq });
          }
          if (admission.kind === 'full') throw this.shareFull(admission);
          if (admission.kind !== 'admitted') throw new Error('could not number the batch');
          const seq = admission.seq;
          admittedSeq = seq;
          const data: IngestBatchJob = {
            projectId,
            deviceId,
            batchId,
            seq,
            correlationId,
            acceptedAt,
            bytes: body.length,
            events,
          };
          let jobId = ingestJobId(deviceId, seq);
          // Still in use after the tries: a distinct id keeps the batch (stored, out of order).
          if (admission.jobIdTaken) jobId = takenNumberJobId(jobId, batchId);
          await this.producer.add('ingest-batch', data, { jobId });
        })(),
        ENQUEUE_DEADLINE_MS,
        'no answer from Redis',
      );
    } catch (err) {
      if (err instanceof AppError) throw err;
      // Best effort: the batch was not accepted, so it holds no place in the backlog (if
      // Redis is down this fails too, and the worker's backlog audit heals it). Its job may
      // be in Redis all the same (the deadline fired after the add): its body stays an hour.
      if (admittedSeq !== undefined)
        this.backlog
          .release({ projectId, deviceId, batchId, seq: admittedSeq }, ABANDONED_BODY_MS)
          .catch(() => undefined);
      this.accepted.inc({ result: 'unavailable' });
      this.logger.warn(
        { err: (err as Error).message, batchId },
        'could not queue a telemetry batch',
      );
      throw new AppError(
        'unavailable',
        'the ingest queue is unavailable; retry shortly',
        undefined,
        5,
      );
    }
  }

  private readonly jobKey = (jobId: string): string => this.producer.queue.toKey(jobId);

  private shareFull(full: { jobs: number; bytes: number }): AppError {
    this.accepted.inc({ result: 'project_backlog_full' });
    const byJobs = full.jobs >= this.limits.projectMaxJobs;
    return new AppError(
      'rate_limited',
      byJobs
        ? `this project's share of the ingest backlog is full (INGEST_BACKLOG_PROJECT_MAX_JOBS: ${this.limits.projectMaxJobs} batches waiting); retry later`
        : `this project's share of the ingest backlog is full (INGEST_BACKLOG_PROJECT_MAX_BYTES: ${this.limits.projectMaxBytes} bytes waiting); retry later`,
      undefined,
      Math.min(30, Math.max(1, Math.ceil(full.jobs / 25))),
    );
  }

  /** 429 while the backlog is over its bounds; checked at most every 500 ms per replica. */
  private async refuseWhenBacklogFull(): Promise<void> {
    if (!this.sampled || Date.now() - this.sampled.checkedAt > BACKLOG_CHECK_MS) {
      this.backlogCheck ??= this.checkBacklog().finally(() => (this.backlogCheck = undefined));
      await this.backlogCheck;
    }
    if (this.sampled?.full) {
      this.accepted.inc({ result: 'backlog_full' });
      throw new AppError(
        'rate_limited',
        'the ingest backlog is full; retry later',
        undefined,
        this.sampled.retryAfter,
      );
    }
  }

  private async checkBacklog(): Promise<void> {
    try {
      const [counts, bytes] = await failOpenWithin(
        Promise.all([
          this.producer.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'),
          this.redis.client.get(this.backlog.totalBytesKey),
        ]),
      );
      const jobs = Object.values(counts).reduce((a, b) => a + b, 0);
      let held = Number(bytes ?? 0);
      if (jobs === 0 && held !== 0) {
        // Nothing queued: whatever the counter says is drift (e.g. jobs removed by hand).
        await this.redis.client.set(this.backlog.totalBytesKey, 0);
        held = 0;
      }
      const full = jobs >= this.limits.backlogMaxJobs || held >= this.limits.backlogMaxBytes;
      this.sampled = {
        checkedAt: Date.now(),
        full,
        retryAfter: Math.min(30, Math.max(1, Math.ceil(jobs / 100))),
      };
    } catch {
      // Redis away or silent: enqueue will answer 503 with its own deadline.
      this.sampled = { checkedAt: Date.now(), full: false, retryAfter: 1 };
    }
  }

  private async resolveDevice(projectId: ProjectId, externalId: string): Promise<string> {
    const cacheKey = `${projectId}\u0000${externalId}`;
    const cached = this.deviceIds.get(cacheKey);
    if (cached) return cached;
    let device = await this.devices.findByExternalId(projectId, externalId);
    if (!device) {
      const project = await this.projects.findById(projectId);
      if (!project?.autoRegisterDevices) {
        throw new AppError(
          'not_found',
          `device "${externalId}" is not registered and this project does not register devices automatically`,
        );
      }
      device = await this.devices.register(projectId, externalId, this.quotas.devicesPerProject);
    }
    this.deviceIds.set(cacheKey, device.id);
    return device.id;
  }
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The bytes without a leading UTF-8 byte order mark, which jsonb refuses. */
function withoutBom(raw: Buffer): Buffer {
  return raw.subarray(0, 3).equals(BOM) ? raw.subarray(3) : raw;
}
