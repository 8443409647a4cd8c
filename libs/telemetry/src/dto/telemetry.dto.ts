import { ApiTimeProperty, isStorableText, IsTimestamp, ListQueryDto } from '@app/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsUUID,
  Max,
  Min,
  ValidateBy,
  ValidationOptions,
} from 'class-validator';
import {
  CATALOG_MAX_METRICS,
  CATALOG_READINGS,
  MAX_EVENTS_PER_BATCH,
  MAX_METRIC_NAME_LENGTH,
} from '../telemetry.constants';

// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A metric name as `POST /telemetry` takes it (1-64 characters, nothing PostgreSQL cannot
 * store: NUL, unpaired surrogates), and no other control characters either: typed into a
 * rule or a query, one is a mistake (a stray newline) that would silently match nothing.
 * Characters are code points, as ajv counts them for ingest.
 */
function isMetricName(value: unknown): value is string {
  if (typeof value !== 'string' || CONTROL.test(value) || !isStorableText(value)) return false;
  let length = 0;
  for (const _ of value) if (++length > MAX_METRIC_NAME_LENGTH) return false;
  return length > 0;
}

export function IsMetricName(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isMetricName',
      validator: {
        validate: isMetricName,
        defaultMessage: (args) =>
          `${args?.property} must be a metric name: 1-${MAX_METRIC_NAME_LENGTH} characters, no control characters or unpaired UTF-16 surrogates`,
      },
    },
    options,
  );
}

// ---- request bodies (documentation only: POST /telemetry is validated by ajv) ----

export class TelemetryEventDto {
  @ApiProperty({
    example: '2025-01-01T12:00:00Z',
    description: 'ISO 8601 with a zone; stored at millisecond precision',
  })
  ts: string;

  @ApiProperty({
    example: { temperature: 95.5, door: 'open', alarm: false },
    description:
      'flat object: metric name (1-64 chars) → finite number, string (≤1024), boolean or null; at most 64 keys',
    type: 'object',
    additionalProperties: {
      oneOf: [{ type: 'number' }, { type: 'string' }, { type: 'boolean' }],
      nullable: true,
    },
  })
  data: Record<string, number | string | boolean | null>;
}

export class IngestRequestDto {
  @ApiProperty({
    example: 'sensor-01',
    description: 'registered on first use unless the project turned that off',
  })
  device_external_id: string;

  @ApiProperty({ type: [TelemetryEventDto], minItems: 1, maxItems: MAX_EVENTS_PER_BATCH })
  events: TelemetryEventDto[];
}

export class IngestAcceptedResponse {
  @ApiProperty({
    example: 5000,
    description: 'events in the batch (duplicates are dropped when stored)',
  })
  accepted: number;
  @ApiProperty({ format: 'uuid' }) batch_id: string;
  @ApiProperty({
    example: 0,
    description:
      'values in the events\' data that are not JSON numbers (strings, booleans, nulls): stored, but rules and aggregates ignore them. A number sent as a string ("21.5") is counted here.',
  })
  non_numeric_values: number;
}

// ---- reads ----

export class ReadingResponse {
  @ApiProperty({ format: 'date-time' }) ts: string;
  @ApiProperty({ type: 'object', additionalProperties: true, example: { temperature: 21.5 } })
  data: Record<string, unknown>;
}

export class TelemetryListQueryDto extends ListQueryDto {
  @ApiTimeProperty({ required: false, example: '2025-01-01T00:00:00Z', description: 'inclusive' })
  @IsOptional()
  @IsTimestamp()
  from?: string;

  @ApiTimeProperty({ required: false, example: '2025-01-02T00:00:00Z', description: 'exclusive' })
  @IsOptional()
  @IsTimestamp()
  to?: string;
}

export class TelemetrySinceQueryDto extends ListQueryDto {
  @ApiTimeProperty({
    required: true,
    example: '1735689600',
    description: 'readings with ts > since_ts',
  })
  @IsTimestamp()
  since_ts: string;
}

export const AGGREGATES = ['avg', 'min', 'max', 'sum', 'count'] as const;
export const MAX_BUCKETS = 10000;

export class TelemetryAggregateQueryDto {
  @ApiProperty({ example: 'temperature' })
  @IsMetricName()
  metric: string;

  @ApiTimeProperty({ required: true, example: '2025-01-01T00:00:00Z', description: 'inclusive' })
  @IsTimestamp()
  from: string;

  @ApiTimeProperty({ required: true, example: '2025-01-02T00:00:00Z', description: 'exclusive' })
  @IsTimestamp()
  to: string;

  @ApiProperty({
    example: 3600,
    minimum: 1,
    description: `buckets are aligned to the Unix epoch; at most ${MAX_BUCKETS} per query`,
  })
  @Type(() => Number)
  @IsInt({ message: 'bucket_seconds must be a whole number of seconds' })
  @Min(1, { message: 'bucket_seconds must be at least 1' })
  @Max(366 * 24 * 3600, { message: 'bucket_seconds must be at most a year' })
  bucket_seconds: number;

  @ApiProperty({ enum: AGGREGATES })
  @IsIn(AGGREGATES, { message: `agg must be one of ${AGGREGATES.join(', ')}` })
  agg: (typeof AGGREGATES)[number];
}

export class AggregateBucketDto {
  @ApiProperty({ format: 'date-time' }) bucket_start: string;
  @ApiProperty({ description: 'the aggregate over numeric readings of the bucket' }) value: number;
  @ApiProperty({ description: 'numeric readings in the bucket' }) count: number;
}

export class AggregateResponse {
  @ApiProperty({ type: [AggregateBucketDto] }) items: AggregateBucketDto[];
}

// ---- metric catalog ----

export const JSON_TYPES = ['array', 'boolean', 'null', 'number', 'object', 'string'] as const;
export type JsonType = (typeof JSON_TYPES)[number];

export class DeviceMetricDto {
  @ApiProperty({ example: 'temperature' }) metric: string;
  @ApiProperty({
    enum: JSON_TYPES,
    isArray: true,
    example: ['number', 'string'],
    description: 'the JSON types its values had, in alphabetical order',
  })
  types: JsonType[];
  @ApiProperty({ example: 1000, description: 'readings (of those examined) that carry it' })
  readings: number;
  @ApiProperty({ example: 990, description: 'readings in which it is a JSON number' })
  numeric_readings: number;
  @ApiProperty({
    example: 21.5,
    nullable: true,
    oneOf: [{ type: 'number' }, { type: 'string' }, { type: 'boolean' }],
    description: 'its value in the newest reading that carries it',
  })
  last_value: unknown;
  @ApiProperty({ enum: JSON_TYPES, description: 'the JSON type of last_value' })
  last_type: JsonType;
  @ApiProperty({ format: 'date-time', description: 'the ts of that reading' }) last_ts: string;
  @ApiProperty({
    description:
      'whether rules (and aggregates) can use it: they read only its JSON number values, so it needs some',
  })
  usable_by_rules: boolean;
}

export class DeviceMetricsResponse {
  @ApiProperty({ format: 'uuid' }) device_id: string;
  @ApiProperty({
    example: CATALOG_READINGS,
    description: 'how many of the newest readings were examined',
  })
  readings_examined: number;
  @ApiProperty({
    example: CATALOG_READINGS,
    description: 'the most readings examined: the newest ones',
  })
  readings_limit: number;
  @ApiProperty({
    description: `true when those readings held more than ${CATALOG_MAX_METRICS} metrics: the first ${CATALOG_MAX_METRICS} by name are listed`,
  })
  truncated: boolean;
  @ApiProperty({ type: [DeviceMetricDto], description: 'by metric name' })
  items: DeviceMetricDto[];
}

// ---- rejected readings ----

export class ListRejectionsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'only this device' })
  @IsOptional()
  @IsUUID('all', { message: 'device_id must be a UUID' })
  device_id?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'only this batch (the batch_id of its 202)' })
  @IsOptional()
  @IsUUID('all', { message: 'batch_id must be a UUID' })
  batch_id?: string;
}

export class RejectionResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) device_id: string;
  @ApiProperty({ format: 'uuid', description: 'the batch_id its POST /telemetry answered' })
  batch_id: string;
  @ApiProperty({
    enum: ['reading', 'batch'],
    description: 'one reading of the batch, or the whole batch',
  })
  scope: 'reading' | 'batch';
  @ApiProperty({
    type: Number,
    nullable: true,
    description: "the reading's position in its batch (0-based); null for a whole batch",
  })
  index: number | null;
  @ApiProperty({ type: String, nullable: true, description: "the reading's ts as sent" })
  ts: string | null;
  @ApiProperty({
    type: 'object',
    nullable: true,
    additionalProperties: true,
    description: 'the reading as sent ({ts, data}); null for a whole batch',
  })
  reading: Record<string, unknown> | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'a whole batch: the start of its body (at most 1,024 characters)',
  })
  payload_excerpt: string | null;
  @ApiProperty({ example: 'time zone displacement out of range: "2025-01-01T00:00:00+20:00"' })
  reason: string;
  @ApiProperty({
    type: String,
    nullable: true,
    example: '22009',
    description: 'the PostgreSQL error code, when PostgreSQL refused it',
  })
  code: string | null;
  @ApiProperty({ format: 'date-time', description: 'when it was set aside' }) created_at: string;
}
