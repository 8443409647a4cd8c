import { TelemetryModule } from '@app/telemetry';
import { TenancyModule } from '@app/tenancy';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BacktestService } from './backtest.service';
import { RuleEntity } from './entities/rule.entity';
import { RulesRepository } from './rules.repository';
import { RulesService } from './rules.service';

@Module({
  imports: [TypeOrmModule.forFeature([RuleEntity]), TenancyModule, TelemetryModule],
  providers: [RulesRepository, RulesService, BacktestService],
  exports: [RulesRepository, RulesService, BacktestService],
})
export class RulesModule {}
