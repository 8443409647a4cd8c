import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';

/**
 * A BullMQ queue that emits 'error' with no listener (Redis went away) makes Node's
 * EventEmitter throw, which BullMQ catches and prints raw with console.error, one stack
 * per reconnect attempt. Every queue of the process without a listener gets one that logs
 * through our logger instead (registered queues nobody injects, included).
 */
@Injectable()
export class QueueErrorLogger implements OnModuleInit {
  private readonly logger = new Logger('Queue');

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const queue: unknown = wrapper.instance;
      if (!(queue instanceof Queue) || queue.listenerCount('error') > 0) continue;
      queue.on('error', (err: Error) =>
        this.logger.warn({ queue: queue.name, err: err.message }, 'queue connection error'),
      );
    }
  }
}
