import { QUEUES } from '@app/queue';
import { InjectQueue } from '@nestjs/bullmq';
import {
  Injectable,
  Logger,
  OnApplicationBootstrap,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';

const SWEEP_MS = 1000;
const BATCH = 200;

/**
 * Hands committed alert events (the outbox) to the alert-events queue. Called right after
 * an evaluation commits, and swept every second for events written elsewhere (api ack and
 * resolve) or left behind by a crash between commit and enqueue. `FOR UPDATE SKIP LOCKED`
 * lets several workers relay without handing out an event twice; an enqueue that dies
 * before `dispatched_at` is set is repeated (at-least-once; the event id is the
 * idempotency key downstream).
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectQueue(QUEUES.ALERT_EVENTS) private readonly queue: Queue,
  ) {
    queue.on('error', (err) =>
      this.logger.warn({ err: err.message }, 'alert-events queue connection error'),
    );
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.relay().catch(() => undefined), SWEEP_MS).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Relays pending events; returns how many. One run at a time per process. */
  relay(): Promise<number> {
    this.running ??= this.relayOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async relayOnce(): Promise<number> {
    try {
      return await this.dataSource.transaction(async (em) => {
        const events: Array<{ id: string; project_id: string }> = await em.query(
          `SELECT id, project_id FROM alert_events WHERE dispatched_at IS NULL
            ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [BATCH],
        );
        if (events.length === 0) return 0;
        await this.queue.addBulk(
          events.map((e) => ({
            name: 'alert-event',
            data: { projectId: e.project_id, eventId: e.id, correlationId: e.id },
          })),
        );
        await em.query(
          `UPDATE alert_events SET dispatched_at = now() WHERE id = ANY ($1::uuid[])`,
          [events.map((e) => e.id)],
        );
        return events.length;
      });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'outbox relay failed; will retry');
      throw err;
    }
  }
}
