import { IsDisplayName, IsOptionalNonNull, IsStorableText } from '@app/common';
import { IsMetricName } from '@app/telemetry';
import { TAG_PATTERN } from '@app/tenancy';
import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsUUID,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { OPERATORS, Operator } from '../evaluator';
import { RULE_KINDS, RULE_SCOPES, RuleKind, RuleScope } from '../entities/rule.entity';

/**
 * A display name like those of orgs and devices. PostgreSQL refuses NUL in text (22021), and
 * an unpaired surrogate would be stored as U+FFFD, so neither gets past here.
 */
const IsRuleName = (): PropertyDecorator => applyDecorators(IsDisplayName(1), IsStorableText());

/** `reminder_interval_seconds`, the same on create and update (null: no reminders). */
const IsReminderInterval = (): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({
      example: 3600,
      nullable: true,
      type: Number,
      minimum: 1,
      description:
        'while an alert of the rule stays open and unacknowledged, an alert.reminder event every ' +
        'this many seconds (at least REMINDER_MIN_INTERVAL_SECONDS); null: none',
    }),
    IsOptional(),
    IsInt(),
    Min(1),
    Max(30 * 24 * 3600),
  );

/** Required of a threshold rule (the default kind); an offline rule must leave it out. */
const ForThreshold = (): PropertyDecorator =>
  ValidateIf((o: { kind?: string }) => o.kind !== 'offline');

export class CreateRuleDto {
  @ApiProperty({ example: 'High temperature', maxLength: 200 })
  @IsRuleName()
  name: string;

  @ApiPropertyOptional({
    enum: RULE_KINDS,
    default: 'threshold',
    description:
      'threshold: k of the last n readings of a metric breach a threshold (reading time); ' +
      'offline: nothing heard from a device for offline_after_seconds (arrival time)',
  })
  @IsOptionalNonNull()
  @IsIn(RULE_KINDS, { message: `kind must be one of ${RULE_KINDS.join(', ')}` })
  kind?: RuleKind;

  @ApiPropertyOptional({ example: 'temperature', maxLength: 64, description: 'threshold rules' })
  @ForThreshold()
  @IsMetricName()
  metric?: string;

  @ApiPropertyOptional({ enum: OPERATORS, example: '>', description: 'threshold rules' })
  @ForThreshold()
  @IsIn(OPERATORS, { message: `operator must be one of ${OPERATORS.join(' ')}` })
  operator?: Operator;

  @ApiPropertyOptional({ example: 80, description: 'threshold rules' })
  @ForThreshold()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'threshold must be a finite number' },
  )
  threshold?: number;

  @ApiPropertyOptional({ example: 5, minimum: 1, maximum: 1000, description: 'threshold rules' })
  @ForThreshold()
  @IsInt()
  @Min(1)
  @Max(1000)
  window_n?: number;

  @ApiPropertyOptional({
    example: 5,
    minimum: 1,
    description: 'threshold rules; at most window_n',
  })
  @ForThreshold()
  @IsInt()
  @Min(1)
  @Max(1000)
  required_k?: number;

  @ApiPropertyOptional({
    example: 900,
    minimum: 1,
    maximum: 30 * 24 * 3600,
    description:
      'offline rules (required there): an alert opens once the device has sent nothing for ' +
      'this many seconds of arrival time (at least OFFLINE_MIN_SECONDS)',
  })
  @ValidateIf((o: { kind?: string }) => o.kind === 'offline')
  @IsInt()
  @Min(1)
  @Max(30 * 24 * 3600)
  offline_after_seconds?: number;

  @ApiPropertyOptional({
    example: 300,
    minimum: 0,
    default: 0,
    description: 'in reading time (ts)',
  })
  @IsOptionalNonNull()
  @IsInt()
  @Min(0)
  @Max(365 * 24 * 3600)
  cooldown_seconds?: number;

  @ApiPropertyOptional({
    example: 75,
    nullable: true,
    type: Number,
    description:
      'hysteresis: an open alert resolves only once readings are back across this value ' +
      '(for > and >= at most threshold, for < and <= at least threshold; not for == and !=)',
  })
  @IsOptional()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'clear_threshold must be a finite number' },
  )
  clear_threshold?: number | null;

  @ApiPropertyOptional({
    example: 5,
    nullable: true,
    type: Number,
    minimum: 1,
    description:
      'hysteresis: how many clear readings of the window resolve an open alert (at most window_n)',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  clear_k?: number | null;

  @IsReminderInterval()
  reminder_interval_seconds?: number | null;

  @ApiPropertyOptional({ enum: RULE_SCOPES, default: 'ALL' })
  @IsOptionalNonNull()
  @IsIn(RULE_SCOPES, { message: `scope must be one of ${RULE_SCOPES.join(', ')}` })
  scope?: RuleScope;

  @ApiPropertyOptional({
    example: 'greenhouse',
    description: 'required when scope is TAG, refused otherwise',
  })
  @IsOptionalNonNull()
  @Matches(TAG_PATTERN, { message: 'tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tag?: string;

  @ApiPropertyOptional({ default: true })
  @IsOptionalNonNull()
  @IsBoolean()
  enabled?: boolean;
}

export class UpdateRuleDto {
  @ApiPropertyOptional({ example: 'High temperature', maxLength: 200 })
  @IsOptionalNonNull()
  @IsRuleName()
  name?: string;

  @ApiPropertyOptional({ example: 'temperature' })
  @IsOptionalNonNull()
  @IsMetricName()
  metric?: string;

  @ApiPropertyOptional({ enum: OPERATORS })
  @IsOptionalNonNull()
  @IsIn(OPERATORS, { message: `operator must be one of ${OPERATORS.join(' ')}` })
  operator?: Operator;

  @ApiPropertyOptional({ example: 85 })
  @IsOptionalNonNull()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'threshold must be a finite number' },
  )
  threshold?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000 })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(1000)
  window_n?: number;

  @ApiPropertyOptional({ minimum: 1 })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(1000)
  required_k?: number;

  @ApiPropertyOptional({ minimum: 0 })
  @IsOptionalNonNull()
  @IsInt()
  @Min(0)
  @Max(365 * 24 * 3600)
  cooldown_seconds?: number;

  @ApiPropertyOptional({
    example: 75,
    nullable: true,
    type: Number,
    description:
      'hysteresis: an open alert resolves only once readings are back across this value ' +
      '(for > and >= at most threshold, for < and <= at least threshold; not for == and !=)',
  })
  @IsOptional()
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'clear_threshold must be a finite number' },
  )
  clear_threshold?: number | null;

  @ApiPropertyOptional({
    example: 5,
    nullable: true,
    type: Number,
    minimum: 1,
    description:
      'hysteresis: how many clear readings of the window resolve an open alert (at most window_n)',
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  clear_k?: number | null;

  @IsReminderInterval()
  reminder_interval_seconds?: number | null;

  @ApiPropertyOptional({
    example: 900,
    minimum: 1,
    maximum: 30 * 24 * 3600,
    description: 'offline rules only',
  })
  @IsOptionalNonNull()
  @IsInt()
  @Min(1)
  @Max(30 * 24 * 3600)
  offline_after_seconds?: number;

  @ApiPropertyOptional({ enum: RULE_SCOPES })
  @IsOptionalNonNull()
  @IsIn(RULE_SCOPES, { message: `scope must be one of ${RULE_SCOPES.join(', ')}` })
  scope?: RuleScope;

  @ApiPropertyOptional({ example: 'greenhouse', nullable: true, type: String })
  @IsOptional()
  @Matches(TAG_PATTERN, { message: 'tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tag?: string | null;

  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsBoolean()
  enabled?: boolean;
}

export class RuleDevicesDto {
  @ApiProperty({
    type: [String],
    format: 'uuid',
    example: ['00000000-0000-4000-8000-000000000000'],
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true, message: 'each device id must be a UUID' })
  device_ids: string[];
}

export class RuleDevicesResponse {
  @ApiProperty({ type: [String], format: 'uuid' }) device_ids: string[];
}

export class RuleResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: RULE_KINDS }) kind: RuleKind;
  @ApiProperty({ nullable: true, type: String, description: 'null for an offline rule' })
  metric: string | null;
  @ApiProperty({ enum: OPERATORS, nullable: true, description: 'null for an offline rule' })
  operator: Operator | null;
  @ApiProperty({ nullable: true, type: Number, description: 'null for an offline rule' })
  threshold: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'null for an offline rule' })
  window_n: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'null for an offline rule' })
  required_k: number | null;
  @ApiProperty() cooldown_seconds: number;
  @ApiProperty({ nullable: true, type: Number }) clear_threshold: number | null;
  @ApiProperty({ nullable: true, type: Number }) clear_k: number | null;
  @ApiProperty({ nullable: true, type: Number }) reminder_interval_seconds: number | null;
  @ApiProperty({ nullable: true, type: Number, description: 'null for a threshold rule' })
  offline_after_seconds: number | null;
  @ApiProperty({ enum: RULE_SCOPES }) scope: RuleScope;
  @ApiProperty({ nullable: true, type: String }) tag: string | null;
  @ApiProperty() enabled: boolean;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}
