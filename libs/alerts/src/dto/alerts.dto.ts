import { ApiTimeProperty, IsTimestamp, ListQueryDto } from '@app/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { ALERT_STATUSES, AlertStatus } from '../entities/alert.entity';

export class ListAlertsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ enum: ALERT_STATUSES })
  @IsOptional()
  @IsIn(ALERT_STATUSES, { message: `status must be one of ${ALERT_STATUSES.join(', ')}` })
  status?: AlertStatus;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'rule_id must be a UUID' })
  rule_id?: string;

  @ApiTimeProperty({
    required: false,
    example: '2025-01-01T00:00:00Z',
    description: 'triggered_at ≥ from',
  })
  @IsOptional()
  @IsTimestamp()
  from?: string;

  @ApiTimeProperty({
    required: false,
    example: '2030-01-01T00:00:00Z',
    description: 'triggered_at < to',
  })
  @IsOptional()
  @IsTimestamp()
  to?: string;
}

export class ListProjectAlertsQueryDto extends ListAlertsQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'device_id must be a UUID' })
  device_id?: string;
}

export class WindowEntryDto {
  @ApiProperty({ format: 'date-time' }) ts: string;
  @ApiProperty() value: number;
  @ApiProperty() breached: boolean;
}

export class AlertResponse {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) project_id: string;
  @ApiProperty({ format: 'uuid' }) rule_id: string;
  @ApiProperty({ format: 'uuid' }) device_id: string;
  @ApiProperty({ enum: ALERT_STATUSES }) status: AlertStatus;
  @ApiProperty({ format: 'date-time', description: 'ts of the reading that fired it' })
  triggered_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) acknowledged_at:
    string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) resolved_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({
    description:
      '{rule: the rule as it was, window: [{ts, value, breached}] that fired it, resolution?}',
    type: 'object',
    additionalProperties: true,
  })
  details: Record<string, unknown>;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'the last silence that kept one of its webhook events from being sent',
  })
  silenced_by: string | null;
  @ApiProperty({ description: 'alert.reminder events written for it so far' })
  reminders_sent: number;
}
