import { AppConfig } from '@app/config';
import { DrainingWorkerHost, JobPayloads, OutageService, QUEUES } from '@app/queue';
import { OnWorkerEvent, Processor } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DelayedError, Job } from 'bullmq';
import { EvaluationService } from '../evaluation.service';
import { OutboxRelay } from '../outbox-relay.service';

/** How long an evaluation that found its device busy waits before trying again. */
const BUSY_RETRY_MS = 50;

type EvaluateJob = JobPayloads[typeof QUEUES.RULE_EVALUATION]['evaluate-device'];

@Processor(QUEUES.RULE_EVALUATION, { autorun: false })
export class EvaluationProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(EvaluationProcessor.name);

  constructor(
    private readonly evaluation: EvaluationService,
    private readonly outbox: OutboxRelay,
    private readonly config: ConfigService<AppConfig, true>,
    outage: OutageService,
  ) {
    super(outage);
  }

  onApplicationBootstrap(): void {
    this.start(this.config.get('worker', { infer: true }));
  }

  protected async handle(job: Job<EvaluateJob>, token?: string): Promise<unknown> {
    switch (job.name) {
      case 'evaluate-device': {
        const summary = await this.evaluation.evaluateDevice(job.data.deviceId);
        if (summary.busy) {
          // Another evaluator has the device: come back when it is likely done (no attempt used).
          await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token);
          throw new DelayedError();
        }
        // Hand new events on now rather than at the next sweep; a failure here is covered by it.
        if (summary.opened + summary.resolved > 0) await this.outbox.relay().catch(() => undefined);
        return summary;
      }
      default:
        throw new Error(`unknown evaluation job ${job.name}`);
    }
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.warn({ err: err.message }, 'evaluation worker error');
  }
}
