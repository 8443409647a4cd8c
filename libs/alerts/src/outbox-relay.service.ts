import { PeriodicTask } from '@app/common';
import { WorkerRoles } from '@app/config';
import { InjectProducer, Producer, QUEUES } from '@app/queue';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AlertEventsRepository } from './alert-events.repository';

const SWEEP_MS = 1000;
const BATCH = 200;
/** An event handed on this long ago that still has no deliveries is handed on again. */
export const RELAY_AGAIN_AFTER_SECONDS = 60;
/** While relaying keeps failing, say so at most this often. */
const FAILURE_LOG_EVERY_MS = 60000;

/**
 * Hands committed alert events (the outbox) to the alert-events queue, whose fan-out
 * creates the webhook deliveries and marks the event dispatched in the same transaction.
 * Called right after an evaluation commits, and swept every second for events written
 * elsewhere (api ack and resolve) or left behind (a crash between commit and enqueue; a
 * fan-out job that failed or was lost: handed on again after
 * {@link RELAY_AGAIN_AFTER_SECONDS} while the event is still undispatched). Locked rows
 * are skipped, so several workers relay without handing an event on twice at once.
 * At-least-once: the event id is the idempotency key downstream.
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private readonly sweep = new PeriodicTask(
    SWEEP_MS,
    () => this.relay(),
    this.logger,
    'outbox sweep failed',
    { quiet: true },
  );
  private running?: Promise<number>;
  /** The run after {@link running}, for the requests made while it runs. */
  private next?: Promise<number>;
  private failingSince?: number;
  private lastFailureLog = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly events: AlertEventsRepository,
    @InjectProducer(QUEUES.ALERT_EVENTS) private readonly queue: Producer<'alert-events'>,
    private readonly roles: WorkerRoles,
  ) {}

  /** The sweep runs where alert events are consumed (role `alert-events`). */
  onApplicationBootstrap(): void {
    if (this.roles.runs('alert-events', 'outbox sweep')) this.sweep.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.sweep.stop();
    await this.running?.catch(() => undefined);
    await this.next?.catch(() => undefined);
  }

  /**
   * Relays pending events; returns how many. One run at a time per process, and every
   * request is answered by a run that starts after it: a request made while a run is going
   * waits for the one after it (shared by every request made meanwhile). Joining the run
   * already going, which may have read the outbox before the caller's event committed,
   * left that event to the sweep: up to a second late.
   */
  relay(): Promise<number> {
    if (this.running) {
      this.next ??= this.running
        .catch(() => 0)
        .then(() => {
          this.next = undefined;
          return this.relay();
        });
      return this.next;
    }
    this.running = this.relayOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async relayOnce(): Promise<number> {
    try {
      const relayed = await this.dataSource.transaction(async (em) => {
        const events = await this.events.takeForRelay(em, BATCH, RELAY_AGAIN_AFTER_SECONDS);
        if (events.length === 0) return 0;
        await this.queue.addBulk(
          events.map((e) => ({
            name: 'alert-event' as const,
            data: { projectId: e.projectId, eventId: e.id, correlationId: e.id },
          })),
        );
        await this.events.markRelayed(
          em,
          events.map((e) => e.id),
        );
        return events.length;
      });
      if (this.failingSince !== undefined) {
        this.logger.log({ failedForMs: Date.now() - this.failingSince }, 'outbox relay recovered');
        this.failingSince = undefined;
      }
      return relayed;
    } catch (err) {
      // During an outage this fails every second: one line a minute says it all.
      const now = Date.now();
      this.failingSince ??= now;
      if (now - this.lastFailureLog >= FAILURE_LOG_EVERY_MS) {
        this.lastFailureLog = now;
        this.logger.warn({ err: (err as Error).message }, 'outbox relay failed; will retry');
      }
      throw err;
    }
  }
}
