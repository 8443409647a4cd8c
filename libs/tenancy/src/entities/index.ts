export * from './api-key.entity';
export * from './device.entity';
export * from './org.entity';
export * from './project.entity';
