import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

@Entity({ name: 'alerts' })
export class AlertEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'project_id', type: 'uuid' }) projectId: string;
  @Column({ name: 'rule_id', type: 'uuid' }) ruleId: string;
  @Column({ name: 'device_id', type: 'uuid' }) deviceId: string;
  @Column({ type: 'text' }) status: AlertStatus;
  @Column({ name: 'triggered_at', type: 'timestamptz' }) triggeredAt: Date;
  @Column({ name: 'acknowledged_at', type: 'timestamptz', nullable: true })
  acknowledgedAt: Date | null;
  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true }) resolvedAt: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ type: 'jsonb' }) details: Record<string, unknown>;
  /** The last silence that muted one of its events; null if none ever did. */
  @Column({ name: 'silenced_by', type: 'uuid', nullable: true }) silencedBy: string | null;
  /** Still active with a muted event to send once no silence covers it (the release's). */
  @Column({ name: 'notify_pending', type: 'boolean', default: false }) notifyPending: boolean;
  /** `alert.reminder` events written for it so far. */
  @Column({ name: 'reminders_sent', type: 'integer', default: 0 }) remindersSent: number;
}
