import { TenancyModule } from '@app/tenancy';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { RuleEntity } from './entities/rule.entity';
import { RulesRepository } from './rules.repository';
import { RulesService } from './rules.service';

@Module({
  imports: [TypeOrmModule.forFeature([RuleEntity]), TenancyModule],
  providers: [RulesRepository, RulesService],
  exports: [RulesRepository, RulesService],
})
export class RulesModule {}
