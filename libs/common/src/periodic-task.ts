import type { Logger } from '@nestjs/common';

/**
 * A process's periodic duty: `task` every `everyMs`, one run at a time (a run still going
 * when the next is due makes that one skip), a failure logged (unless `quiet`: the task
 * logs its own) and tried again at the next tick. `stop()` cancels the ticks and waits
 * for a run in progress.
 *
 * Why not a library: @nestjs/schedule's intervals neither skip a tick while a run is
 * still going nor wait for it at shutdown; BullMQ job schedulers run a duty once per
 * fleet, which these per-process ones (caches, and sweeps that repair what Redis lost)
 * must not depend on.
 */
export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly everyMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly failure: string,
    private readonly opts: { quiet?: boolean } = {},
  ) {}

  /** `now`: a first run at once instead of after `everyMs` (a duty that must not wait an hour). */
  start({ now = false }: { now?: boolean } = {}): void {
    this.timer = setInterval(() => this.tick(), this.everyMs).unref();
    if (now) this.tick();
  }

  private tick(): void {
    this.running ??= this.task()
      .catch((err: Error) => {
        if (!this.opts.quiet) this.logger.warn({ err: err.message }, this.failure);
      })
      .finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
