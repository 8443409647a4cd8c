export * from './draining-worker-host';
export * from './queue.constants';
export * from './queue.defaults';
export * from './queue.jobs';
export * from './queue.module';
export * from './redis-connection';
export * from './close-quietly';
