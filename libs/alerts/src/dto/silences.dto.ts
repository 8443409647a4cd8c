import {
  ApiTimeProperty,
  IsDisplayName,
  IsOptionalNonNull,
  IsStorableText,
  IsTimestamp,
  ListQueryDto,
} from '@app/common';
import { TAG_PATTERN } from '@app/tenancy';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, IsUUID, Length, Matches } from 'class-validator';
import { SILENCE_STATES, SilenceState } from '../entities/silence.entity';

/** Free text: line breaks and tabs, but no other control characters. */
const TEXT = /^(?:[^\p{Cc}]|[\n\r\t])*$/u;

export class CreateSilenceDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'matcher: alerts of this rule' })
  @IsOptionalNonNull()
  @IsUUID('all', { message: 'rule_id must be a UUID' })
  rule_id?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'matcher: alerts of this device' })
  @IsOptionalNonNull()
  @IsUUID('all', { message: 'device_id must be a UUID' })
  device_id?: string;

  @ApiPropertyOptional({
    example: 'hall-3',
    description: 'matcher: alerts of devices that have this tag (when the event happens)',
  })
  @IsOptionalNonNull()
  @Matches(TAG_PATTERN, { message: 'tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tag?: string;

  @ApiTimeProperty({
    required: false,
    example: '2025-01-01T08:00:00Z',
    description: 'default: now',
  })
  @IsOptionalNonNull()
  @IsTimestamp()
  starts_at?: string;

  @ApiTimeProperty({ required: true, example: '2025-01-01T12:00:00Z', description: 'exclusive' })
  @IsTimestamp()
  ends_at: string;

  @ApiProperty({ example: 'replacing the compressor', maxLength: 500 })
  @IsString()
  @Length(1, 500)
  @Matches(TEXT, {
    message: 'comment must not contain control characters other than line breaks and tabs',
  })
  @IsStorableText()
  comment: string;

  @ApiProperty({ example: 'jane@example.com', maxLength: 200, description: 'who made it' })
  @IsDisplayName(1)
  @IsStorableText()
  created_by: string;
}

export class ListSilencesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ enum: SILENCE_STATES })
  @IsOptional()
  @IsIn(SILENCE_STATES, { message: `state must be one of ${SILENCE_STATES.join(', ')}` })
  state?: SilenceState;
}

export class SilenceResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) rule_id: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) device_id: string | null;
  @ApiProperty({ nullable: true, type: String }) tag: string | null;
  @ApiProperty({ format: 'date-time' }) starts_at: string;
  @ApiProperty({ format: 'date-time' }) ends_at: string;
  @ApiProperty() comment: string;
  @ApiProperty() created_by: string;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ enum: SILENCE_STATES, description: 'as of the answer' }) state: SilenceState;
}
