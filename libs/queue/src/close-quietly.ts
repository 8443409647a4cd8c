import { withDeadline } from '@app/common';
import { Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';

type ShutdownHooked = Queue & { onApplicationShutdown?: () => Promise<unknown> };

/** A producer queue's close gets this long, then its connection is dropped. */
const CLOSE_DEADLINE_MS = 2000;
const DISCONNECT_DEADLINE_MS = 1000;

/**
 * A queue whose connection has no offline queue rejects `close()` while Redis is
 * reconnecting ("Stream isn't writeable"), and BullMQ's `disconnect()` then waits for an
 * 'end' that a reconnecting ioredis client never emits: either would fail or stall the
 * whole application shutdown. @nestjs/bullmq hangs its close on the queue object; this
 * wraps it so each step has a deadline, a failure is logged, and the connection simply
 * dropped (a producer has nothing in flight to wait for).
 */
export function closeQuietlyOnShutdown(queue: Queue, logger: Logger): void {
  const hooked = queue as ShutdownHooked;
  const close = hooked.onApplicationShutdown?.bind(queue);
  if (!close) return;
  hooked.onApplicationShutdown = async () => {
    try {
      await withDeadline(close(), CLOSE_DEADLINE_MS, 'not closed');
    } catch (err) {
      logger.warn(
        { err: (err as Error).message, queue: queue.name },
        'queue did not close cleanly; disconnecting',
      );
      // Already gone, or stuck reconnecting: either way nothing is left to wait for.
      await withDeadline(queue.disconnect(), DISCONNECT_DEADLINE_MS).catch(() => undefined);
    }
  };
}
