import { JobHandlers, QueueHandler, QUEUES } from '@app/queue';
import { Injectable } from '@nestjs/common';
import { DelayedError } from 'bullmq';
import { EvaluationService } from '../evaluation.service';

/** How long an evaluation that found its device busy waits before trying again. */
const BUSY_RETRY_MS = 50;

/** The `rule-evaluation` queue: one job per stored batch, naming the device. */
@Injectable()
export class EvaluationHandler implements QueueHandler<typeof QUEUES.RULE_EVALUATION> {
  static readonly queue = QUEUES.RULE_EVALUATION;

  constructor(private readonly evaluation: EvaluationService) {}

  readonly jobs: JobHandlers<typeof QUEUES.RULE_EVALUATION> = {
    'evaluate-device': async (job, token) => {
      const summary = await this.evaluation.evaluateDevice(job.data.deviceId, job.data.acceptedAt);
      if (summary.busy) {
        // Another evaluator has the device: come back when it is likely done (no attempt used).
        await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token);
        throw new DelayedError();
      }
      return summary;
    },
  };
}
