export * from './test-env';
export * from './test-app';
export * from './tenant.factory';
export * from './isolated-run';
