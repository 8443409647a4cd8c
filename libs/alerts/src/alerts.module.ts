import { Module } from '@nestjs/common';

/** Alerts feature module; filled in by its issue. */
@Module({})
export class AlertsModule {}
