import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Persisted in `alert_events.type` and in subscriptions: don't rename. */
export const EVENT_TYPES = [
  'alert.created',
  'alert.acknowledged',
  'alert.resolved',
  'alert.reminder',
  'device.offline',
  'device.online',
] as const;
/**
 * What a webhook created without `event_types` takes: the contract's three. Types added
 * since (`alert.reminder`, `device.offline`, `device.online`) are opt-in, so no existing receiver meets a type it never asked for.
 */
export const DEFAULT_EVENT_TYPES = [
  'alert.created',
  'alert.acknowledged',
  'alert.resolved',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** What a delivery can carry: the alert events, and the test event (`POST /webhooks/{id}/test`). */
export const DELIVERY_EVENT_TYPES = [...EVENT_TYPES, 'webhook.test'] as const;

@Entity({ name: 'webhooks' })
export class WebhookEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'project_id', type: 'uuid' }) projectId: string;
  @Column({ type: 'text' }) url: string;
  @Column({ type: 'text', nullable: true }) description: string | null;
  @Column({ name: 'event_types', type: 'text', array: true }) eventTypes: EventType[];
  @Column({ type: 'boolean' }) enabled: boolean;
  @Column({ name: 'disabled_reason', type: 'text', nullable: true }) disabledReason: string | null;
  @Column({ type: 'text' }) secret: string;
  @Column({ name: 'previous_secret', type: 'text', nullable: true }) previousSecret: string | null;
  @Column({ name: 'previous_secret_expires_at', type: 'timestamptz', nullable: true })
  previousSecretExpiresAt: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
