export * from './dto/rules.dto';
export * from './entities/rule.entity';
export * from './evaluator';
export * from './rules.mappers';
export * from './rules.module';
export * from './rules.repository';
export * from './rules.service';
