import { WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown } from '@nestjs/common';

/**
 * @nestjs/bullmq closes `@Processor` workers last, after the queues; a job finishing
 * during shutdown could then fail to enqueue its follow-up. Closing the worker first lets
 * in-flight jobs complete with every connection still open. `close()` is idempotent.
 */
export abstract class DrainingWorkerHost extends WorkerHost implements BeforeApplicationShutdown {
  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
  }
}
