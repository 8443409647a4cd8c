import Redis from 'ioredis';
import type { Socket } from 'node:net';

/** What the patch below touches of an ioredis 5 client: private, hence checked at runtime. */
interface SocketTimeoutInternals {
  stream: Socket;
  socketTimeoutTimer?: NodeJS.Timeout;
  setSocketTimeout(): void;
}

const PATCHED = Symbol.for('telemetry.ioredis.socketTimeoutClearedOnClose');

/**
 * ioredis 5 (up to 5.11.1) arms `socketTimeout`'s timer on the client, not on the socket,
 * and clears it only when that socket receives data. A socket that closes with a command
 * in flight (Redis restarted, a connection reset) leaves the timer running: once the
 * client has reconnected it fires on the old deadline and destroys the new, healthy
 * socket, 10 s (our command connections) or 30 s (BullMQ's) after the outage, which fails
 * the commands on it a second time (redis/ioredis#2147, fixed in ioredis 6.0.0 by #2148).
 *
 * This clears the timer when the socket it was armed for closes, as #2148 does; ioredis'
 * own code runs unchanged otherwise. Applied once per process, to every ioredis client
 * (BullMQ's and a cluster's node connections included); a no-op where the method is gone.
 */
export function clearSocketTimeoutOnClose(): void {
  const proto = Redis.prototype as unknown as Partial<SocketTimeoutInternals> & {
    [PATCHED]?: boolean;
  };
  const original = proto.setSocketTimeout;
  if (typeof original !== 'function' || proto[PATCHED]) return;
  proto[PATCHED] = true;
  proto.setSocketTimeout = function (this: SocketTimeoutInternals): void {
    original.call(this);
    const stream = this.stream;
    const timer = this.socketTimeoutTimer;
    const onClose = () => {
      if (this.socketTimeoutTimer !== timer) return;
      clearTimeout(timer);
      this.socketTimeoutTimer = undefined;
    };
    stream.once('close', onClose);
    // Data cleared (or re-armed) the timer through ioredis' own listener: ours goes.
    stream.once('data', () => stream.removeListener('close', onClose));
  };
}
