export * from './fail-open';
export * from './key-space';
export * from './redis-target';
export * from './redis.module';
export * from './redis.service';
