import { AppConfig } from '@app/config';
import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ConfigService } from '@nestjs/config';
import { defaultJobOptions } from './queue.defaults';
import { QueueErrorLogger } from './queue-error-logger';
import { QuietQueue } from './quiet-queue';
import { redisOptionsFromUrl } from './redis-connection';

// Every queue @nestjs/bullmq builds closes within a deadline (see QuietQueue).
BullModule.queueClass = QuietQueue;

/**
 * BullMQ's shared connection and prefix; feature libs add producers (`ProducersModule`),
 * each with its queue's own prefix (`queuePrefix`: hash-tagged on a Redis Cluster).
 */
@Module({
  imports: [
    DiscoveryModule,
    BullModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) => {
        const redis = config.get('redis', { infer: true });
        return {
          connection: redisOptionsFromUrl(redis.url),
          prefix: `${redis.prefix}:bull`,
          defaultJobOptions: defaultJobOptions(config.get('queue', { infer: true })),
        };
      },
    }),
  ],
  providers: [QueueErrorLogger],
  exports: [BullModule],
})
export class QueueModule {}
