import { Module } from '@nestjs/common';

/** Webhooks feature module; filled in by its issue. */
@Module({})
export class WebhooksModule {}
