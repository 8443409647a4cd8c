import { Module } from '@nestjs/common';

/** Rules feature module; filled in by its issue. */
@Module({})
export class RulesModule {}
