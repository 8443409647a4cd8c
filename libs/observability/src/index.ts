export * from './health.service';
export * from './logger';
export * from './metrics.service';
export * from './observability.module';
