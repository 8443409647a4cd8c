import { ApiTimeProperty, IsOptionalNonNull, IsTimestamp } from '@app/common';
import { IsMetricName } from '@app/telemetry';
import { TAG_PATTERN } from '@app/tenancy';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsUUID,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { OPERATORS, Operator } from '../evaluator';

/**
 * The evaluation fields of a rule. Without `rule_id` they define the rule (metric,
 * operator, threshold, window_n and required_k required, as at creation); with it, each
 * one given replaces the saved rule's ("what if the threshold were 85?").
 */
export class BacktestRuleDto {
  @ApiPropertyOptional({ example: 'temperature', maxLength: 64 })
  @IsOptionalNonNull()
  @IsMetricName()
  metric?: string;

  @ApiPropertyOptional({ enum: OPERATORS, example: '>' })
  @IsOptionalNonNull()
  @IsIn(OPERATORS, { message: `operator must be one of ${OPERATORS.join(' ')}` })
  operator?: Operator;

  @ApiPropertyOptional({ example: 80 })
  @IsOptionalNonNull()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'threshold must be a finite number' },
  )
  threshold?: number;

  @ApiPropertyOptional({ example: 5, minimum: 1, maximum: 1000 })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(1000)
  window_n?: number;

  @ApiPropertyOptional({ example: 3, minimum: 1, description: 'at most window_n' })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(1000)
  required_k?: number;

  @ApiPropertyOptional({ example: 300, minimum: 0, default: 0 })
  @IsOptionalNonNull()
  @IsInt()
  @Min(0)
  @Max(365 * 24 * 3600)
  cooldown_seconds?: number;

  @ApiPropertyOptional({ example: 75, nullable: true, type: Number })
  @IsOptional()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'clear_threshold must be a finite number' },
  )
  clear_threshold?: number | null;

  @ApiPropertyOptional({ example: 5, nullable: true, type: Number, minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  clear_k?: number | null;
}

export class BacktestRequestDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'a saved rule of the project' })
  @IsOptionalNonNull()
  @IsUUID('all', { message: 'rule_id must be a UUID' })
  rule_id?: string;

  @ApiPropertyOptional({
    type: BacktestRuleDto,
    description: 'the rule to try: required without rule_id, changes to it with one',
  })
  @IsOptionalNonNull()
  @IsObject({ message: 'rule must be an object' })
  @ValidateNested()
  @Type(() => BacktestRuleDto)
  rule?: BacktestRuleDto;

  @ApiTimeProperty({ required: true, example: '2025-01-01T00:00:00Z', description: 'inclusive' })
  @IsTimestamp()
  from: string;

  @ApiTimeProperty({ required: true, example: '2025-01-08T00:00:00Z', description: 'exclusive' })
  @IsTimestamp()
  to: string;

  @ApiPropertyOptional({
    type: [String],
    format: 'uuid',
    description: "these devices of the project (instead of the rule's)",
  })
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true, message: 'each device id must be a UUID' })
  device_ids?: string[];

  @ApiPropertyOptional({
    example: 'greenhouse',
    description: "the project's devices with this tag (instead of the rule's)",
  })
  @IsOptionalNonNull()
  @Matches(TAG_PATTERN, { message: 'tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tag?: string;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 1000,
    default: 100,
    description: 'transitions per device returned in full (all are counted)',
  })
  @IsOptionalNonNull()
  @IsInt()
  @Min(0)
  @Max(1000)
  transitions_limit?: number;
}

export class BacktestWindowPoint {
  @ApiProperty({ format: 'date-time' }) ts: string;
  @ApiProperty() value: number;
  @ApiProperty() breached: boolean;
}

export class BacktestTransition {
  @ApiProperty({ enum: ['open', 'resolve'] }) kind: 'open' | 'resolve';
  @ApiProperty({ format: 'date-time', description: 'the ts of the reading it happened at' })
  at: string;
  @ApiPropertyOptional({
    type: [BacktestWindowPoint],
    description: 'open only: the window that fired it, oldest first',
  })
  window?: BacktestWindowPoint[];
}

export class BacktestDevice {
  @ApiProperty({ format: 'uuid' }) device_id: string;
  @ApiProperty() external_id: string;
  @ApiProperty({ description: 'readings with the metric as a number in the range' })
  readings: number;
  @ApiProperty() opened: number;
  @ApiProperty() resolved: number;
  @ApiProperty({ description: 'an alert would still be open at `to`' }) open_at_end: boolean;
  @ApiProperty({ type: [BacktestTransition], description: 'the first transitions_limit' })
  transitions: BacktestTransition[];
  @ApiProperty({ description: 'more transitions happened than are listed' })
  truncated: boolean;
}

export class BacktestRuleResponse {
  @ApiProperty() metric: string;
  @ApiProperty({ enum: OPERATORS }) operator: Operator;
  @ApiProperty() threshold: number;
  @ApiProperty() window_n: number;
  @ApiProperty() required_k: number;
  @ApiProperty() cooldown_seconds: number;
  @ApiProperty({ nullable: true, type: Number }) clear_threshold: number | null;
  @ApiProperty({ nullable: true, type: Number }) clear_k: number | null;
}

export class BacktestResponse {
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) rule_id: string | null;
  @ApiProperty({ type: BacktestRuleResponse, description: 'the rule as evaluated' })
  rule: BacktestRuleResponse;
  @ApiProperty({ format: 'date-time' }) from: string;
  @ApiProperty({ format: 'date-time' }) to: string;
  @ApiProperty({ description: 'readings evaluated, all devices' }) readings: number;
  @ApiProperty() opened: number;
  @ApiProperty() resolved: number;
  @ApiProperty({ type: [BacktestDevice], description: 'oldest device first' })
  devices: BacktestDevice[];
}
