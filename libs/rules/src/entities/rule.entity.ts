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

@Entity({ name: 'rules' })
export class RuleEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'project_id', type: 'uuid' }) projectId: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text' }) metric: string;
  @Column({ type: 'text' }) operator: Operator;
  @Column({ type: 'double precision' }) threshold: number;
  @Column({ name: 'window_n', type: 'integer' }) windowN: number;
  @Column({ name: 'required_k', type: 'integer' }) requiredK: number;
  @Column({ name: 'cooldown_seconds', type: 'integer' }) cooldownSeconds: number;
  @Column({ name: 'clear_threshold', type: 'double precision', nullable: true })
  clearThreshold: number | null;
  @Column({ name: 'clear_k', type: 'integer', nullable: true }) clearK: number | null;
  @Column({ type: 'text' }) scope: RuleScope;
  @Column({ type: 'text', nullable: true }) tag: string | null;
  @Column({ type: 'boolean', default: true }) enabled: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
