import { IsDisplayName, IsOptionalNonNull, ListQueryDto } from '@app/common';
import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { API_KEY_SCOPES, ApiKeyScope } from '../api-key.format';

export const TAG_PATTERN = /^[A-Za-z0-9._:/-]{1,64}$/;
export const EXTERNAL_ID_PATTERN = /^[^\p{Cc}\s]{1,128}$/u;

export class CreateOrgDto {
  @ApiProperty({ example: 'Acme', minLength: 1, maxLength: 200 })
  @IsDisplayName(1)
  name: string;
}

/** Days a project may keep its readings: 1 to 100 years' worth. */
export const MAX_RETENTION_DAYS = 36500;

/** `retention_days` of a project: a whole number of days, or null for the global maximum. */
const RetentionDays = (): PropertyDecorator =>
  applyDecorators(
    ApiPropertyOptional({
      type: 'integer',
      nullable: true,
      minimum: 1,
      maximum: MAX_RETENTION_DAYS,
      example: 90,
      description:
        "Readings older than this many days are deleted (within the hour). null: kept until the platform's maximum (TELEMETRY_RETENTION_DAYS), which also caps this.",
    }),
    IsOptional(),
    IsInt({ message: 'retention_days must be a whole number of days, or null' }),
    Min(1, { message: 'retention_days must be at least 1 (null keeps readings)' }),
    Max(MAX_RETENTION_DAYS, { message: `retention_days must be at most ${MAX_RETENTION_DAYS}` }),
  );

export class CreateProjectDto extends CreateOrgDto {
  @ApiPropertyOptional({
    default: true,
    description:
      'When false, POST /telemetry for an unknown device answers 404 instead of registering it.',
  })
  @IsOptionalNonNull()
  @IsBoolean()
  auto_register_devices?: boolean;

  @RetentionDays()
  retention_days?: number | null;
}

export class UpdateProjectDto {
  @ApiPropertyOptional({ example: 'Greenhouse 2', minLength: 1, maxLength: 200 })
  @IsOptionalNonNull()
  @IsDisplayName(1)
  name?: string;

  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsBoolean()
  auto_register_devices?: boolean;

  @RetentionDays()
  retention_days?: number | null;
}

export class CreateApiKeyDto {
  @ApiPropertyOptional({ example: 'greenhouse gateways', maxLength: 200 })
  @IsOptionalNonNull()
  @IsDisplayName(0)
  name?: string;

  @ApiPropertyOptional({
    enum: API_KEY_SCOPES,
    isArray: true,
    description: 'Defaults to all three scopes.',
    example: ['ingest'],
  })
  @IsOptionalNonNull()
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(3)
  @IsIn(API_KEY_SCOPES, {
    each: true,
    message: `each scope must be one of ${API_KEY_SCOPES.join(', ')}`,
  })
  scopes?: ApiKeyScope[];
}

export class CreateDeviceDto {
  @ApiProperty({
    example: 'sensor-01',
    maxLength: 128,
    description: 'Your id for the device, unique in the project.',
  })
  @IsString()
  @Matches(EXTERNAL_ID_PATTERN, {
    message: 'external_id must be 1-128 characters without spaces or control characters',
  })
  external_id: string;

  @ApiPropertyOptional({ example: 'North greenhouse', maxLength: 200, nullable: true })
  @IsOptionalNonNull()
  @IsDisplayName(0)
  name?: string;

  @ApiPropertyOptional({ example: ['greenhouse', 'north'], maxItems: 32, type: [String] })
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMaxSize(32)
  @Matches(TAG_PATTERN, { each: true, message: 'each tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tags?: string[];
}

export class UpdateDeviceDto {
  @ApiPropertyOptional({ example: 'North greenhouse', maxLength: 200, nullable: true })
  @IsOptional()
  @ValidateIf((_o, v) => v !== null)
  @IsDisplayName(0)
  name?: string | null;

  @ApiPropertyOptional({ example: ['greenhouse'], maxItems: 32, type: [String] })
  @IsOptionalNonNull()
  @IsArray()
  @ArrayMaxSize(32)
  @Matches(TAG_PATTERN, { each: true, message: 'each tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tags?: string[];
}

export class ListDevicesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ example: 'greenhouse', description: 'only devices carrying this tag' })
  @IsOptional()
  @Matches(TAG_PATTERN, { message: 'tag must be 1-64 of [A-Za-z0-9._:/-]' })
  tag?: string;

  @ApiPropertyOptional({
    example: 'sensor-01',
    description: 'only the device with this external_id (exact, case-sensitive)',
  })
  @IsOptional()
  @Matches(EXTERNAL_ID_PATTERN, {
    message: 'external_id must be 1-128 characters without spaces or control characters',
  })
  external_id?: string;
}

// ---- responses -------------------------------------------------------------------------

export class OrgResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ format: 'date-time' }) created_at: string;
}

export class ProjectResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) org_id: string;
  @ApiProperty() name: string;
  @ApiProperty() auto_register_devices: boolean;
  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: "days readings are kept; null: the platform's maximum",
  })
  retention_days: number | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
}

export class ApiKeyResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ example: 'tpk_abcdefghijkm' }) prefix: string;
  @ApiProperty({ enum: API_KEY_SCOPES, isArray: true }) scopes: ApiKeyScope[];
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) last_used_at: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revoked_at: string | null;
}

export class CurrentApiKeyResponse extends ApiKeyResponse {
  @ApiProperty({ type: ProjectResponse, description: 'the project the key belongs to' })
  project: ProjectResponse;
}

export class CreatedApiKeyResponse extends ApiKeyResponse {
  @ApiProperty({ description: 'The full key, `<prefix>.<secret>`. Shown only in this response.' })
  key: string;
}

export class DeviceResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty() external_id: string;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({ type: [String] }) tags: string[];
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) last_seen_at: string | null;
}
