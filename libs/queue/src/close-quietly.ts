import { Logger } from '@nestjs/common';
import type { Queue } from 'bullmq';

type ShutdownHooked = Queue & { onApplicationShutdown?: () => Promise<unknown> };

/**
 * A queue whose connection has no offline queue rejects `close()` while Redis is
 * reconnecting ("Stream isn't writeable"), which would fail the whole application
 * shutdown. @nestjs/bullmq hangs its close on the queue object; this wraps it so such a
 * failure is logged and the connection simply dropped (a producer has nothing in flight
 * to wait for).
 */
export function closeQuietlyOnShutdown(queue: Queue, logger: Logger): void {
  const hooked = queue as ShutdownHooked;
  const close = hooked.onApplicationShutdown?.bind(queue);
  if (!close) return;
  hooked.onApplicationShutdown = async () => {
    try {
      await close();
    } catch (err) {
      logger.warn(
        { err: (err as Error).message, queue: queue.name },
        'queue did not close cleanly; disconnecting',
      );
      try {
        await queue.disconnect();
      } catch {
        // Already gone: nothing left to release.
      }
    }
  };
}
