import { IngestBacklog, ingestJobId } from '@app/telemetry';
import { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { RunningApi } from './api';

/**
 * Queues a batch the way the api does (admitted, numbered, its body stored beside the job,
 * same job id), but with a body the api would not let through: what the worker must
 * survive if a value slips past validation (or was queued by an older api). `events` are
 * raw JSON texts. Returns the batch id.
 */
export async function injectBatch(
  api: RunningApi,
  ingest: Queue,
  projectId: string,
  deviceId: string,
  events: string[],
): Promise<string> {
  const body = Buffer.from(`{"device_external_id":"x","events":[${events.join(',')}]}`);
  const backlog = api.app.get(IngestBacklog);
  const batchId = randomUUID();
  const batch = {
    projectId,
    deviceId,
    batchId,
    body,
    acceptedAt: Date.now(),
    jobKey: (id: string) => ingest.toKey(id),
  };
  let admission = await backlog.admit(batch);
  if (admission.kind === 'unseeded') admission = await backlog.admit({ ...batch, floor: 0 });
  if (admission.kind !== 'admitted') throw new Error(`not admitted: ${admission.kind}`);
  const seq = admission.seq;
  await ingest.add(
    'ingest-batch',
    {
      projectId,
      deviceId,
      batchId,
      seq,
      correlationId: 'injected',
      acceptedAt: Date.now(),
      bytes: body.length,
      events: events.length,
    },
    { jobId: ingestJobId(deviceId, seq) },
  );
  return batchId;
}
