export * from './telemetry.module';
