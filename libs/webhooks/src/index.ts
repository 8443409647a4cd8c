export * from './webhooks.module';
export * from './ssrf';
export * from './circuit-breaker';
