import {
  Injectable,
  Logger,
  OnApplicationBootstrap,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { PeriodicTask } from '@app/common';
import { WorkerRoles } from '@app/config';
import { DeliveryLedgerRepository } from './delivery-ledger.repository';
import { DeliveryQueue } from './delivery-queue';

const SWEEP_MS = 30000;
const SWEEP_LIMIT = 500;

/**
 * Every 30 s, makes pending deliveries more than a minute overdue run now: their job went
 * missing (a crash between commit and enqueue, Redis losing data) or sits delayed past a
 * retry that was asked for while Redis was away. Harmless when they do have a job: a
 * delivery's job id is its own id.
 */
@Injectable()
export class DeliverySweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly task: PeriodicTask;

  constructor(
    private readonly ledger: DeliveryLedgerRepository,
    private readonly deliveryQueue: DeliveryQueue,
    private readonly roles: WorkerRoles,
  ) {
    this.task = new PeriodicTask(
      SWEEP_MS,
      () => this.sweep(),
      new Logger(DeliverySweeper.name),
      'delivery sweep failed',
    );
  }

  /** Runs where webhooks are delivered (role `deliver`). */
  onApplicationBootstrap(): void {
    if (this.roles.runs('deliver', 'delivery sweep')) this.task.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.task.stop();
  }

  /** One sweep: up to `limit` overdue deliveries made to run now; returns how many. */
  async sweep(limit = SWEEP_LIMIT): Promise<number> {
    const overdue = await this.ledger.overdue(limit);
    for (const d of overdue) await this.deliveryQueue.runNow(d.projectId, d.deliveryId);
    return overdue.length;
  }
}
