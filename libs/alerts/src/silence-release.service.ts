import { PeriodicTask } from '@app/common';
import { WorkerRoles } from '@app/config';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { OutboxRelay } from './outbox-relay.service';
import { SilencesRepository } from './silences.repository';

/** How often alerts owed a notification are looked at. */
export const SILENCE_RELEASE_MS = 2000;
const PAGE = 200;

/**
 * The end of a silence, for the alerts it muted: an alert still open or acknowledged,
 * with an event a silence kept from the webhooks, gets its latest such event sent once no
 * silence covers it any more (the silence expired, was expired by hand, or the device lost
 * the tag). One notification, whatever the number of events muted; none for an alert that
 * resolved meanwhile. Runs where alert events are consumed; rows are locked with SKIP
 * LOCKED, so several workers never hand one event back twice.
 */
@Injectable()
export class SilenceRelease implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(SilenceRelease.name);
  private readonly task = new PeriodicTask(
    SILENCE_RELEASE_MS,
    () => this.run(),
    this.logger,
    'silence release failed',
    { quiet: true },
  );

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly silences: SilencesRepository,
    private readonly relay: OutboxRelay,
    private readonly roles: WorkerRoles,
  ) {}

  onApplicationBootstrap(): void {
    if (this.roles.runs('alert-events', 'silence release')) this.task.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** One pass over every alert owed a notification; returns the events handed back. */
  async run(): Promise<number> {
    let released = 0;
    let after: string | null = null;
    for (;;) {
      const page: { count: number; last: string | null; released: number } =
        await this.dataSource.transaction(async (em) => {
          const pending = await this.silences.takePending(em, after, PAGE);
          let handed = 0;
          for (const alert of pending) {
            if (alert.status === 'resolved') await this.silences.settle(em, alert.alertId);
            else if (!(await this.silences.covering(em, alert, new Date()))) {
              const event = await this.silences.release(em, alert.alertId);
              if (event) {
                handed++;
                this.logger.log(
                  { alertId: alert.alertId, eventId: event },
                  'no silence covers the alert any more: its latest muted event goes out',
                );
              }
            }
          }
          return {
            count: pending.length,
            last: pending.at(-1)?.alertId ?? null,
            released: handed,
          };
        });
      released += page.released;
      if (page.count < PAGE) break;
      after = page.last;
    }
    if (released > 0) await this.relay.relay().catch(() => undefined);
    return released;
  }
}
