import { Module } from '@nestjs/common';

/** Telemetry feature module; filled in by its issue. */
@Module({})
export class TelemetryModule {}
