import { AppConfig } from '@app/config';
import { RedisService } from '@app/redis';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type Redis from 'ioredis';
import type { JobState } from 'bullmq';
import {
  deviceOfIngestJobId,
  ingestJobId,
  ingestJobIdPrefix,
  takenNumberJobId,
} from './telemetry.keys';

/** An idle device's batch counter is forgotten after this; it is re-seeded from PostgreSQL. */
export const SEQ_TTL_MS = 30 * 24 * 3600 * 1000;
/**
 * A batch's body expires this long after it was accepted at the latest: a bound on what a
 * body whose release never comes can hold (a backlog record that expired first, a worker
 * of an earlier version, which releases without deleting it). A batch still queued then
 * is set aside as failed when it runs.
 */
export const BODY_TTL_MS = 30 * 24 * 3600 * 1000;
/**
 * How long a batch's body outlives a release that may have left its job in Redis: an api
 * whose enqueue failed, possibly after Redis took the job (the client was told 503 and
 * resends; a job that is there still stores if it runs within the hour, and is set
 * aside as failed after that).
 */
export const ABANDONED_BODY_MS = 3600 * 1000;
/**
 * A failed batch that could not be set aside keeps its body as long as BullMQ keeps the
 * failed job (`removeOnFail`), for an operator to retry.
 */
export const FAILED_BODY_MS = 7 * 24 * 3600 * 1000;
/** A project's backlog record outlives its last admission by this much at most. */
const BACKLOG_TTL_MS = 7 * 24 * 3600 * 1000;
/** An entry whose job is gone is only cleaned up once it is this old (enqueue in flight). */
const AUDIT_MIN_AGE_MS = 120000;
const TOTAL = '#bytes';

/**
 * KEYS: backlog, counter, body. ARGV: field prefix, bytes, acceptedAt, maxJobs, maxBytes,
 * seqTtlMs, floor ('' = none), backlogTtlMs, batch id, body, bodyTtlMs → {seq, jobs,
 * bytes}; seq -1: the project's share is full; -2: the device has no counter (call again
 * with the floor read from PostgreSQL). The body is stored only when the batch is admitted.
 */
const ADMIT = `
local bytes = tonumber(ARGV[2])
local jobs = redis.call('HLEN', KEYS[1])
local held = 0
local total = redis.call('HGET', KEYS[1], '${TOTAL}')
if total then held = tonumber(total); jobs = jobs - 1 end
if jobs >= tonumber(ARGV[4]) or (jobs > 0 and held + bytes > tonumber(ARGV[5])) then
  return {-1, jobs, held}
end
local floor = tonumber(ARGV[7])
local seq
if redis.call('EXISTS', KEYS[2]) == 0 then
  if not floor then return {-2, jobs, held} end
  seq = floor + 1
  redis.call('SET', KEYS[2], seq, 'PX', ARGV[6])
else
  seq = redis.call('INCR', KEYS[2])
  if floor and seq <= floor then
    seq = floor + 1
    redis.call('SET', KEYS[2], seq)
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('HSET', KEYS[1], ARGV[1] .. seq, bytes .. ':' .. ARGV[3] .. ':' .. ARGV[9])
redis.call('HINCRBY', KEYS[1], '${TOTAL}', bytes)
redis.call('SET', KEYS[3], ARGV[10], 'PX', ARGV[11])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
return {seq, jobs + 1, held + bytes}
`;

/**
 * KEYS: backlog, body. ARGV: field, bodyTtlMs → the bytes the field held (0 when already
 * released). The body is deleted (bodyTtlMs 0) or given that expiry, whether or not the
 * field was still there.
 */
const RELEASE = `
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local bytes = tonumber(string.match(v, '^(%d+)'))
redis.call('HINCRBY', KEYS[1], '${TOTAL}', -bytes)
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return bytes
`;

/** ARGV: applied, ttlMs → 1 when the counter was behind and was raised. */
const RAISE = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

type BacklogRedis = Redis & {
  ingestAdmit(
    k1: string,
    k2: string,
    k3: string,
    ...args: Array<string | number | Buffer>
  ): Promise<number[]>;
  ingestRelease(k1: string, k2: string, field: string, bodyTtlMs: number): Promise<number>;
  ingestRaise(k1: string, applied: number, ttl: number): Promise<number>;
};

export type Admission =
  /** `jobIdTaken`: a job with this number's id is still in Redis (see {@link IngestBacklog.admit}). */
  | { kind: 'admitted'; seq: number; jobIdTaken: boolean }
  | { kind: 'full'; jobs: number; bytes: number }
  | { kind: 'unseeded' };

/**
 * The ingest queue's bookkeeping in Redis: each device's batch counter (the order batches
 * are applied in) and each project's share of the backlog. An admission is one script:
 * the share is checked, the batch numbered and counted at once.
 *
 * - Counter: `ingest:seq:<device>` (the name every version uses: api replicas of two
 *   versions side by side, in a rolling upgrade or a rollback, share it, so they never
 *   hand out one number twice; on a Redis Cluster `ingest:{<project>}:seq:<device>`, in
 *   its project's slot, which the script needs), forgotten after 30 idle days. When it is missing (a new
 *   device, a Redis that lost its data, an idle device) the api re-seeds it from
 *   `devices.ingest_seq`, the last batch PostgreSQL applied, so numbering continues after
 *   the stored batches. When Redis kept an older value (a failover to a lagging replica),
 *   the api skips numbers whose job is still in Redis, and the worker raises the counter
 *   when a batch numbered at or below what it applied still brings new readings.
 * - Share: `ingest:{<project>}:backlog`, a hash of the project's queued batches (job id →
 *   bytes and accept time) and their byte total. Released once per batch by deleting its
 *   field, so nothing outlives the batch; the hash goes when it is empty. The worker's
 *   audit releases entries whose job is gone or finished (removed by hand, an api that
 *   died mid-enqueue, a worker of an older version that does not release).
 * - Body: `ingest:{<project>}:body:<batch id>`, the batch as the worker will store it
 *   (bytes, not a string in the job's JSON: see {@link IngestBacklog.bodyKey}). Written by
 *   the admission and deleted by the release, so it lives exactly as long as the batch's
 *   place in the backlog; a release that may leave a job behind gives it an expiry instead.
 */
@Injectable()
export class IngestBacklog {
  private readonly redis: BacklogRedis;
  private readonly limits: AppConfig['ingest'];

  constructor(
    private readonly redisService: RedisService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.limits = config.get('ingest', { infer: true });
    const client = redisService.client;
    if (!('ingestAdmit' in client)) {
      client.defineCommand('ingestAdmit', { numberOfKeys: 3, lua: ADMIT });
      client.defineCommand('ingestRelease', { numberOfKeys: 2, lua: RELEASE });
      client.defineCommand('ingestRaise', { numberOfKeys: 1, lua: RAISE });
    }
    this.redis = client as BacklogRedis;
  }

  /** Persisted, and shared with earlier versions: don't rename (see the class comment). */
  seqKey(projectId: string, deviceId: string): string {
    return this.redisService.cluster
      ? this.redisService.key('ingest', `{${projectId}}`, 'seq', deviceId)
      : this.redisService.key('ingest', 'seq', deviceId);
  }

  backlogKey(projectId: string): string {
    return this.redisService.key('ingest', `{${projectId}}`, 'backlog');
  }

  /**
   * Where a batch's body waits for the worker. Kept out of the job: BullMQ writes a job's
   * data as one JSON string, which costs the api an escape, a UTF-8 length and an encode of
   * the whole body, and the worker a decode and a parse, per batch; as its own key the
   * bytes go to Redis and back untouched. In the project's slot, beside the backlog record
   * whose script writes it.
   */
  bodyKey(projectId: string, batchId: string): string {
    return this.redisService.key('ingest', `{${projectId}}`, 'body', batchId);
  }

  /** A batch's body (null when it is gone: released, or never written). */
  body(projectId: string, batchId: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.bodyKey(projectId, batchId));
  }

  /** Bytes waiting in the whole ingest backlog (every project). */
  get totalBytesKey(): string {
    return this.redisService.key('ingest', 'backlog-bytes');
  }

  /** Projects that have (or recently had) a backlog record: what the audit walks. */
  get projectsKey(): string {
    return this.redisService.key('ingest', 'backlogs');
  }

  /**
   * Numbers a batch, counts it against the project's share and stores its body, atomically;
   * `floor` (the last number PostgreSQL applied) is needed only when the answer was
   * `unseeded`.
   * `jobKey` maps a job id to its BullMQ key: a counter that went back hands out a number
   * whose job (completed, say) may still be in Redis, and BullMQ silently ignores an add
   * whose id exists, which would drop the batch; the caller then picks another id.
   */
  async admit(a: {
    projectId: string;
    deviceId: string;
    batchId: string;
    body: Buffer;
    acceptedAt: number;
    floor?: number;
    jobKey: (jobId: string) => string;
  }): Promise<Admission> {
    const [seq, jobs, bytes] = (
      await this.redis.ingestAdmit(
        this.backlogKey(a.projectId),
        this.seqKey(a.projectId, a.deviceId),
        this.bodyKey(a.projectId, a.batchId),
        ingestJobIdPrefix(a.deviceId),
        a.body.length,
        a.acceptedAt,
        this.limits.projectMaxJobs,
        this.limits.projectMaxBytes,
        SEQ_TTL_MS,
        a.floor ?? '',
        BACKLOG_TTL_MS,
        a.batchId,
        a.body,
        BODY_TTL_MS,
      )
    ).map(Number);
    if (seq === -1) return { kind: 'full', jobs, bytes };
    if (seq === -2) return { kind: 'unseeded' };
    // The whole backlog's bytes, the audit's list and BullMQ's key: other slots (a cluster
    // refuses them in one pipeline), so apart from the script, sent together.
    const [, , taken] = await Promise.all([
      this.redis.incrby(this.totalBytesKey, a.body.length),
      this.redis.sadd(this.projectsKey, a.projectId),
      this.redis.exists(a.jobKey(ingestJobId(a.deviceId, seq))),
    ]);
    return { kind: 'admitted', seq, jobIdTaken: Number(taken) === 1 };
  }

  /**
   * The project's devices with a batch accepted and not yet stored (or set aside): heard
   * from, though PostgreSQL's `last_seen_at` does not show it yet. The offline scan skips
   * them, so a backlog behind a slow or stopped worker never reads as devices gone quiet.
   */
  async queuedDevices(projectId: string): Promise<Set<string>> {
    const devices = new Set<string>();
    for (const field of await this.redis.hkeys(this.backlogKey(projectId))) {
      const deviceId = field === TOTAL ? null : deviceOfIngestJobId(field);
      if (deviceId) devices.add(deviceId);
    }
    return devices;
  }

  /**
   * Gives a batch's bytes back (stored, set aside, or never queued) and deletes its body;
   * once per batch. `keepBodyMs`: the body expires then instead, for a release that may
   * leave the batch's job behind ({@link ABANDONED_BODY_MS}, {@link FAILED_BODY_MS}).
   */
  async release(
    batch: { projectId: string; deviceId: string; seq: number; batchId: string },
    keepBodyMs = 0,
  ): Promise<number> {
    const { projectId, deviceId, seq, batchId } = batch;
    const bytes = Number(
      await this.redis.ingestRelease(
        this.backlogKey(projectId),
        this.bodyKey(projectId, batchId),
        ingestJobId(deviceId, seq),
        keepBodyMs,
      ),
    );
    if (bytes > 0) await this.redis.decrby(this.totalBytesKey, bytes);
    return bytes;
  }

  /** Raises a device's counter to `applied` when it is below; true when it was. */
  async raiseCounter(projectId: string, deviceId: string, applied: number): Promise<boolean> {
    const key = this.seqKey(projectId, deviceId);
    return Number(await this.redis.ingestRaise(key, applied, SEQ_TTL_MS)) === 1;
  }

  /**
   * Gives device counters without an expiry (written by versions before counters
   * expired) the idle expiry, so counters of devices that never send again don't stay in
   * Redis forever. A SCAN of the counters (of every node of a cluster), once per worker
   * process. Returns how many.
   */
  async expireIdleCounters(): Promise<number> {
    let expired = 0;
    for await (const { node, keys } of this.redisService.scan(this.seqKey('*', '*'))) {
      const ttls = await Promise.all(keys.map((key) => node.pttl(key)));
      const forever = keys.filter((_, i) => ttls[i] === -1);
      await Promise.all(forever.map((key) => node.pexpire(key, SEQ_TTL_MS)));
      expired += forever.length;
    }
    return expired;
  }

  /**
   * Releases entries whose batch is no longer queued: its job is gone, or finished without
   * releasing (a worker that died between the two, or one of a version that doesn't).
   * Returns how many were released. `queue`: the ingest queue (or its producer); a job's
   * state is read without loading the job (its payload is the whole batch).
   */
  async audit(
    queue: { getJobState(id: string): Promise<JobState | 'unknown'> },
    now = Date.now(),
  ): Promise<number> {
    let released = 0;
    let cursor = '0';
    do {
      const [next, projects] = await this.redis.sscan(this.projectsKey, cursor, 'COUNT', 100);
      cursor = next;
      for (const projectId of projects) {
        const entries = await this.redis.hgetall(this.backlogKey(projectId));
        const fields = Object.keys(entries).filter((f) => f !== TOTAL);
        if (fields.length === 0) {
          await this.redis.srem(this.projectsKey, projectId);
          continue;
        }
        for (const field of fields) {
          // Its enqueue may be in flight (the job not added yet, or a job of an earlier
          // batch under the same number still there): only old entries are looked at.
          const [, accepted, batchId] = entries[field].split(':');
          if (now - Number(accepted ?? 0) < AUDIT_MIN_AGE_MS) continue;
          let state = await queue.getJobState(field);
          // A batch admitted while its number's id was in use has a job id of its own: the
          // job under the number is another batch's, whatever its state.
          if (batchId) {
            const own = await queue.getJobState(takenNumberJobId(field, batchId));
            if (own !== 'unknown') state = own;
          }
          if (state !== 'unknown' && state !== 'completed' && state !== 'failed') continue;
          // A failed batch's body stays as long as its job, for an operator to retry (the
          // worker deletes it once the batch is set aside in PostgreSQL). An entry written
          // before bodies had keys names none: the key released is then one never written.
          const bytes = Number(
            await this.redis.ingestRelease(
              this.backlogKey(projectId),
              this.bodyKey(projectId, batchId ?? field),
              field,
              state === 'failed' ? FAILED_BODY_MS : 0,
            ),
          );
          if (bytes > 0) {
            await this.redis.decrby(this.totalBytesKey, bytes);
            released++;
          }
        }
      }
    } while (cursor !== '0');
    return released;
  }
}
