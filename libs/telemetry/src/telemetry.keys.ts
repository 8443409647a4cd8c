/**
 * BullMQ job id of a device's batch number `seq`: lets the worker look a predecessor up
 * and the backlog audit find a batch's job (never used to deduplicate; PostgreSQL does
 * that). Persisted in Redis. No ':' allowed in BullMQ ids.
 */
export const ingestJobId = (deviceId: string, seq: number): string =>
  `${ingestJobIdPrefix(deviceId)}${seq}`;
export const ingestJobIdPrefix = (deviceId: string): string => `b-${deviceId}-`;
/**
 * The job id of a batch whose number's {@link ingestJobId} was still in use when it was
 * admitted (a counter that went back): the number's id and the batch's own.
 */
export const takenNumberJobId = (numberJobId: string, batchId: string): string =>
  `${numberJobId}-${batchId}`;
/** The device of an {@link ingestJobId}; null for anything else. */
export const deviceOfIngestJobId = (jobId: string): string | null =>
  /^b-(.+)-\d+$/.exec(jobId)?.[1] ?? null;
