export * from './webhooks.module';
export * from './ssrf';
