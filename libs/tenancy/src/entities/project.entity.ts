import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity({ name: 'projects' })
export class ProjectEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'org_id', type: 'uuid' })
  orgId: string;

  @Column({ type: 'text' })
  name: string;

  /** When false, `POST /telemetry` for an unknown device answers 404 instead of registering it. */
  @Column({ name: 'auto_register_devices', type: 'boolean', default: true })
  autoRegisterDevices: boolean;

  /** Readings older than this many days are deleted; null: the global TELEMETRY_RETENTION_DAYS. */
  @Column({ name: 'retention_days', type: 'integer', nullable: true })
  retentionDays: number | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
