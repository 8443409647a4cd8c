import { QUEUES } from './queue.constants';

/**
 * Every job as one typed union: `name` selects the payload. Payloads carry ids and a
 * correlation id, never whole entities and never secrets. Job names are persisted too.
 */
export interface JobPayloads {
  [QUEUES.TELEMETRY_INGEST]: {
    'ingest-batch': {
      projectId: string;
      deviceId: string;
      batchId: string;
      /** Per-device sequence number given at accept time: batches apply in this order. */
      seq: number;
      correlationId: string;
      /** Epoch ms when the api accepted the batch. */
      acceptedAt: number;
      /** Size of the body, held against the backlog bound until the batch is stored. */
      bytes: number;
      /** Number of events in the batch. */
      events: number;
      /**
       * The validated request body as received: `{device_external_id, events: [{ts, data}]}`.
       * Absent from what this version's api queues, which stores the body as its own key
       * beside the job (`IngestBacklog.bodyKey`); present in the jobs of earlier versions,
       * and emptied once a failed batch is set aside.
       */
      payload?: string;
    };
  };
  [QUEUES.RULE_EVALUATION]: {
    'evaluate-device': {
      projectId: string;
      deviceId: string;
      correlationId: string;
      /** When the api accepted the batch that asked for it (epoch ms), for the lag metric. */
      acceptedAt?: number;
    };
  };
  [QUEUES.ALERT_EVENTS]: {
    'alert-event': { projectId: string; eventId: string; correlationId: string };
    /** Reminder `n` of an alert, due `n` intervals after it opened (delayed job). */
    'alert-reminder': { projectId: string; alertId: string; n: number; correlationId: string };
  };
  [QUEUES.WEBHOOK_DELIVERY]: {
    'deliver-event': {
      projectId: string;
      deliveryId: string;
      correlationId: string;
      /**
       * Its event, when the enqueuer knew it: read beside the delivery's row rather than
       * after it (jobs queued by earlier versions have none and read it after).
       */
      eventId?: string;
      /** Times it found its project's delivery slots all taken (its backoff grows with it). */
      slotWaits?: number;
    };
  };
}

export type JobName<Q extends keyof JobPayloads> = keyof JobPayloads[Q] & string;
export type JobData<Q extends keyof JobPayloads, N extends JobName<Q>> = JobPayloads[Q][N];

/** The payload of an accepted `POST /telemetry` batch (api → worker). */
export type IngestBatchJob = JobData<typeof QUEUES.TELEMETRY_INGEST, 'ingest-batch'>;
/** A device whose new readings wait for rule evaluation (ingest → evaluation). */
export type EvaluateDeviceJob = JobData<typeof QUEUES.RULE_EVALUATION, 'evaluate-device'>;
/** An outbox event to fan out to webhooks (outbox relay → fan-out). */
export type AlertEventJob = JobData<typeof QUEUES.ALERT_EVENTS, 'alert-event'>;
/** One webhook delivery's next step (fan-out, sweeper, retry → sender). */
export type DeliverEventJob = JobData<typeof QUEUES.WEBHOOK_DELIVERY, 'deliver-event'>;
