import type { RedisService } from '@app/redis';

/** Redis keys of ingestion. Persisted: renaming one resets what it counts. */
export const ingestSeqKey = (redis: RedisService, deviceId: string): string =>
  redis.key('ingest', 'seq', deviceId);
export const backlogBytesKey = (redis: RedisService): string =>
  redis.key('ingest', 'backlog-bytes');

/**
 * BullMQ job id of a device's batch number `seq`: lets the worker look a predecessor up
 * (never used to deduplicate; PostgreSQL does that). No ':' allowed in BullMQ ids.
 */
export const ingestJobId = (deviceId: string, seq: number): string => `b-${deviceId}-${seq}`;
