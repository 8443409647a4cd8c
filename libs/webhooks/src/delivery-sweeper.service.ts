import {
  Injectable,
  Logger,
  OnApplicationBootstrap,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { PeriodicTask } from '@app/queue';
import { DeliveryService } from './delivery.service';

const SWEEP_MS = 30000;

/**
 * Re-enqueues pending deliveries that have no job (a crash between the fan-out's commit
 * and its enqueue, or a Redis that lost data). Harmless when they do have one: a
 * delivery's job id is its own id.
 */
@Injectable()
export class DeliverySweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly task: PeriodicTask;

  constructor(deliveries: DeliveryService) {
    this.task = new PeriodicTask(
      SWEEP_MS,
      () => deliveries.sweep(),
      new Logger(DeliverySweeper.name),
      'delivery sweep failed',
    );
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.task.stop();
  }
}
