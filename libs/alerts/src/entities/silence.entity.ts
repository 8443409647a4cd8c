import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const SILENCE_STATES = ['active', 'pending', 'expired'] as const;
export type SilenceState = (typeof SILENCE_STATES)[number];

@Entity({ name: 'silences' })
export class SilenceEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'project_id', type: 'uuid' }) projectId: string;
  @Column({ name: 'rule_id', type: 'uuid', nullable: true }) ruleId: string | null;
  @Column({ name: 'device_id', type: 'uuid', nullable: true }) deviceId: string | null;
  @Column({ type: 'text', nullable: true }) tag: string | null;
  @Column({ name: 'starts_at', type: 'timestamptz' }) startsAt: Date;
  @Column({ name: 'ends_at', type: 'timestamptz' }) endsAt: Date;
  @Column({ type: 'text' }) comment: string;
  @Column({ name: 'created_by', type: 'text' }) createdBy: string;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}

/** Where a silence stands at `now`. */
export function silenceState(
  s: Pick<SilenceEntity, 'startsAt' | 'endsAt'>,
  now: Date,
): SilenceState {
  if (s.endsAt.getTime() <= now.getTime()) return 'expired';
  return s.startsAt.getTime() > now.getTime() ? 'pending' : 'active';
}
