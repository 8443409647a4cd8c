import { PeriodicTask } from '@app/common';
import { WorkerRoles } from '@app/config';
import { InjectProducer, Producer, QUEUES } from '@app/queue';
import { RedisService } from '@app/redis';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { IngestBacklog } from './ingest-backlog';

const AUDIT_EVERY_MS = 60000;

/**
 * Once a minute, one worker (whichever takes the Redis lock) releases backlog places
 * whose batch is no longer queued: a job removed by hand, an api that died between
 * counting a batch and queuing it. Without this such places would count against their
 * project's share for a week.
 */
@Injectable()
export class BacklogAuditor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(BacklogAuditor.name);
  private readonly task = new PeriodicTask(
    AUDIT_EVERY_MS,
    () => this.auditOnce(),
    this.logger,
    'backlog audit failed',
  );
  private readonly me = randomUUID();
  private countersExpired = false;

  constructor(
    private readonly backlog: IngestBacklog,
    private readonly redis: RedisService,
    @InjectProducer(QUEUES.TELEMETRY_INGEST)
    private readonly queue: Producer<typeof QUEUES.TELEMETRY_INGEST>,
    private readonly roles: WorkerRoles,
  ) {}

  /** Runs where batches are stored (role `ingest`). */
  onApplicationBootstrap(): void {
    if (this.roles.runs('ingest', 'backlog audit')) this.task.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.task.stop();
  }

  /** Runs the audit if no other worker is; returns the places released. */
  async auditOnce(): Promise<number> {
    const lock = this.redis.key('ingest', 'backlog-audit');
    const taken = await this.redis.client.set(lock, this.me, 'PX', AUDIT_EVERY_MS - 5000, 'NX');
    if (taken !== 'OK') return 0;
    if (!this.countersExpired) {
      const expired = await this.backlog.expireIdleCounters();
      this.countersExpired = true;
      if (expired > 0) this.logger.log({ expired }, 'device counters given their idle expiry');
    }
    const released = await this.backlog.audit(this.queue);
    if (released > 0)
      this.logger.warn({ released }, 'released backlog places whose batch was no longer queued');
    return released;
  }
}
