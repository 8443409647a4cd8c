import { IsOptionalNonNull, ListQueryDto } from '@app/common';
import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import { DELIVERY_STATUSES, DeliveryStatus } from '../entities/webhook-delivery.entity';
import { DELIVERY_EVENT_TYPES, EVENT_TYPES, EventType } from '../entities/webhook.entity';

const EVENT_TYPES_MESSAGE = `event_types must be a non-empty list of ${EVENT_TYPES.join(', ')}`;
/** Free text: line breaks and tabs, but no other control characters (PostgreSQL refuses NUL). */
const TEXT = /^(?:[^\p{Cc}]|[\n\r\t])*$/u;
const TEXT_MESSAGE =
  '$property must not contain control characters other than line breaks and tabs';

/** Optional, nullable free text of at most 500 characters. */
const IsDescription = (): PropertyDecorator =>
  applyDecorators(
    IsOptional(),
    IsString(),
    MaxLength(500),
    Matches(TEXT, { message: TEXT_MESSAGE }),
  );

/** Optional (not null) non-empty list of distinct event types. */
const IsEventTypes = (): PropertyDecorator =>
  applyDecorators(
    IsOptionalNonNull(),
    IsArray({ message: EVENT_TYPES_MESSAGE }),
    ArrayMinSize(1, { message: EVENT_TYPES_MESSAGE }),
    ArrayMaxSize(EVENT_TYPES.length, { message: EVENT_TYPES_MESSAGE }),
    ArrayUnique({ message: 'event_types must not repeat a type' }),
    IsIn(EVENT_TYPES, { each: true, message: EVENT_TYPES_MESSAGE }),
  );

export class CreateWebhookDto {
  @ApiProperty({
    example: 'https://hooks.example.com/telemetry',
    maxLength: 2048,
    description:
      'http or https. Loopback, private, link-local and other internal addresses are refused, here and again at every connection (see WEBHOOK_ALLOW_PRIVATE_NETWORKS).',
  })
  @IsString()
  @Length(1, 2048)
  url: string;

  @ApiPropertyOptional({ maxLength: 500, nullable: true, type: String })
  @IsDescription()
  description?: string | null;

  @ApiPropertyOptional({
    enum: EVENT_TYPES,
    isArray: true,
    description:
      'default: alert.created, alert.acknowledged, alert.resolved (alert.reminder, device.offline and device.online only when listed)',
  })
  @IsEventTypes()
  event_types?: EventType[];

  @ApiPropertyOptional({ default: true })
  @IsOptionalNonNull()
  @IsBoolean()
  enabled?: boolean;
}

export class UpdateWebhookDto {
  @ApiPropertyOptional({ maxLength: 2048 })
  @IsOptionalNonNull()
  @IsString()
  @Length(1, 2048)
  url?: string;

  @ApiPropertyOptional({ maxLength: 500, nullable: true, type: String })
  @IsDescription()
  description?: string | null;

  @ApiPropertyOptional({ enum: EVENT_TYPES, isArray: true })
  @IsEventTypes()
  event_types?: EventType[];

  @ApiPropertyOptional()
  @IsOptionalNonNull()
  @IsBoolean()
  enabled?: boolean;
}

export class RotateSecretDto {
  @ApiPropertyOptional({
    minimum: 0,
    maximum: 7 * 24 * 3600,
    default: 86400,
    description:
      'How long the old secret keeps signing beside the new one (two space-separated signatures). 0 retires it now.',
  })
  @IsOptionalNonNull()
  @IsInt()
  @Min(0)
  @Max(7 * 24 * 3600)
  previous_secret_ttl_seconds?: number;
}

export class WebhookResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty() url: string;
  @ApiProperty({ nullable: true, type: String }) description: string | null;
  @ApiProperty({ enum: EVENT_TYPES, isArray: true }) event_types: EventType[];
  @ApiProperty() enabled: boolean;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'why it is disabled: by a user, or the endpoint answered 410 Gone',
  })
  disabled_reason: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'while a rotated-out secret still signs, until when',
  })
  previous_secret_expires_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class WebhookCreatedResponse extends WebhookResponse {
  @ApiProperty({
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    description: 'Standard Webhooks signing secret; shown only here (and at rotation)',
  })
  secret: string;
}

export class SecretRotatedResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ description: 'the new secret; shown only here' }) secret: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  previous_secret_expires_at: string | null;
}

export class CircuitStatusResponse {
  @ApiProperty({ enum: ['closed', 'open', 'half_open'] }) state: 'closed' | 'open' | 'half_open';
  @ApiProperty() consecutive_failures: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) opened_at: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'open: when one probe may go; half_open: when an unanswered probe is given up',
  })
  next_attempt_at: string | null;
}

export class DeliveryResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty({ format: 'uuid' }) webhook_id: string;
  @ApiProperty({ format: 'uuid', description: 'also the webhook-id header' }) event_id: string;
  @ApiProperty({
    enum: DELIVERY_EVENT_TYPES,
    description: 'webhook.test: sent by POST /webhooks/{webhook_id}/test',
  })
  event_type: string;
  @ApiProperty({ enum: DELIVERY_STATUSES }) status: DeliveryStatus;
  @ApiProperty() attempts: number;
  @ApiProperty({ nullable: true, type: Number }) last_status_code: number | null;
  @ApiProperty({ nullable: true, type: String }) last_error: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  next_attempt_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) delivered_at: string | null;
}

export class AttemptResponse {
  @ApiProperty({ description: '1 for the first attempt' }) attempt: number;
  @ApiProperty({ format: 'date-time' }) started_at: string;
  @ApiProperty() duration_ms: number;
  @ApiProperty({ nullable: true, type: Number }) status_code: number | null;
  @ApiProperty({ nullable: true, type: String }) error: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'the start of what the endpoint answered (at most 2 KiB)',
  })
  response_excerpt: string | null;
}

export class ListDeliveriesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'webhook_id must be a UUID' })
  webhook_id?: string;

  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES, { message: `status must be one of ${DELIVERY_STATUSES.join(', ')}` })
  status?: DeliveryStatus;

  @ApiPropertyOptional({ format: 'uuid', description: 'the alert event (webhook-id)' })
  @IsOptional()
  @IsUUID('all', { message: 'event_id must be a UUID' })
  event_id?: string;
}
