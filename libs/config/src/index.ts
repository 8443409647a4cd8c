export * from './config';
export * from './config.module';
export * from './env';
export * from './env.validation';
export * from './boot';
export * from './receiver-config';
export * from './worker-roles';
export * from './worker-roles.service';
