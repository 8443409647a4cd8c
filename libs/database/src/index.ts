export * from './data-source';
export * from './database.module';
export * from './migrate';
export * from './migrations';
export * from './pg-errors';
export * from './keyset';
export * from './advisory-lock';
export * from './quota';
