import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { Operator } from '../evaluator';

export const RULE_SCOPES = ['ALL', 'TAG', 'EXPLICIT'] as const;
export type RuleScope = (typeof RULE_SCOPES)[number];

/**
 * `threshold`: k of the last n readings of a metric breach a threshold (reading time).
 * `offline`: nothing heard from a device for `offline_after_seconds` (arrival time).
 */
export const RULE_KINDS = ['threshold', 'offline'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

@Entity({ name: 'rules' })
export class RuleEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'project_id', type: 'uuid' }) projectId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', default: 'threshold' }) kind: RuleKind;
  /** Null exactly for an offline rule, like operator, threshold, window_n and required_k. */
  @Column({ type: 'text', nullable: true }) metric: string | null;
  @Column({ type: 'text', nullable: true }) operator: Operator | null;
  @Column({ type: 'double precision', nullable: true }) threshold: number | null;
  @Column({ name: 'window_n', type: 'integer', nullable: true }) windowN: number | null;
  @Column({ name: 'required_k', type: 'integer', nullable: true }) requiredK: number | null;
  @Column({ name: 'offline_after_seconds', type: 'integer', nullable: true })
  offlineAfterSeconds: number | null;
  /** The offline scan's watermark: devices last heard before it were looked at already. */
  @Column({ name: 'offline_scanned_until', type: 'timestamptz', nullable: true, select: false })
  offlineScannedUntil?: Date | null;
  @Column({ name: 'cooldown_seconds', type: 'integer' }) cooldownSeconds: number;
  @Column({ name: 'clear_threshold', type: 'double precision', nullable: true })
  clearThreshold: number | null;
  @Column({ name: 'clear_k', type: 'integer', nullable: true }) clearK: number | null;
  @Column({ name: 'reminder_interval_seconds', type: 'integer', nullable: true })
  reminderIntervalSeconds: number | null;
  @Column({ type: 'text' }) scope: RuleScope;
  @Column({ type: 'text', nullable: true }) tag: string | null;
  @Column({ type: 'boolean', default: true }) enabled: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}

/** A threshold rule: the fields an offline rule lacks are there. */
export type ThresholdRule = RuleEntity & {
  kind: 'threshold';
  metric: string;
  operator: Operator;
  threshold: number;
  windowN: number;
  requiredK: number;
};

export const isThresholdRule = (r: RuleEntity): r is ThresholdRule => r.kind !== 'offline';
