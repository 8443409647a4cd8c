import { withDeadline } from '@app/common';
import { Logger } from '@nestjs/common';
import { Queue } from 'bullmq';

/** A queue's close gets this long, then its connection is dropped. */
const CLOSE_DEADLINE_MS = 2000;
const DISCONNECT_DEADLINE_MS = 1000;

/**
 * The queue class @nestjs/bullmq builds (`BullModule.queueClass`, its extension point).
 * A queue whose connection has no offline queue rejects `close()` while Redis is
 * reconnecting ("Stream isn't writeable"), and `disconnect()` then waits for an 'end' a
 * reconnecting client never emits: either would fail or stall the whole application
 * shutdown. Here each step has a deadline, a failure is logged, and the connection is
 * dropped (a producer has nothing in flight to wait for).
 */
export class QuietQueue extends Queue {
  private static readonly logger = new Logger('Queue');

  override async close(): Promise<void> {
    try {
      await withDeadline(super.close(), CLOSE_DEADLINE_MS, 'not closed');
    } catch (err) {
      QuietQueue.logger.warn(
        { err: (err as Error).message, queue: this.name },
        'queue did not close cleanly; disconnecting',
      );
      // Already gone, or stuck reconnecting: either way nothing is left to wait for.
      await withDeadline(super.disconnect(), DISCONNECT_DEADLINE_MS).catch(() => undefined);
    }
  }
}
