import type { Logger } from '@nestjs/common';

/**
 * A worker's periodic duty: `task` every `everyMs`, one run at a time (a run still going
 * when the next is due makes that one skip), a failure logged and tried again at the next
 * tick. `stop()` cancels the ticks and waits for a run in progress.
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly everyMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly failure: string,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.task()
        .catch((err: Error) => this.logger.warn({ err: err.message }, this.failure))
        .finally(() => (this.running = undefined));
    }, this.everyMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
