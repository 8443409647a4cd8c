import {
  Injectable,
  Logger,
  OnApplicationBootstrap,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { DeliveryService } from './delivery.service';

const SWEEP_MS = 30000;

/**
 * Re-enqueues pending deliveries that have no job (a crash between the fan-out's commit
 * and its enqueue, or a Redis that lost data). Harmless when they do have one: a
 * delivery's job id is its own id.
 */
@Injectable()
export class DeliverySweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliverySweeper.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(private readonly deliveries: DeliveryService) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.deliveries
        .sweep()
        .catch((err: Error) => this.logger.warn({ err: err.message }, 'delivery sweep failed'))
        .finally(() => (this.running = undefined));
    }, SWEEP_MS).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
