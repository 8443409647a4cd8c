import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppConfig } from './config';
import { WorkerRole } from './worker-roles';

/**
 * Which worker roles this process runs (WORKER_QUEUES), for the roles' periodic duties.
 * Each duty asks once, at boot, by name; the names of the duties that run here are kept
 * (`duties`, the `worker_duties` gauge), so where each one runs can be seen and tested.
 */
@Injectable()
export class WorkerRoles {
  private readonly roles: ReadonlySet<WorkerRole>;
  private readonly running = new Set<string>();

  constructor(config: ConfigService<AppConfig, true>) {
    this.roles = new Set(config.get('worker', { infer: true }).roles);
  }

  /** Whether `duty`, which belongs to `role`, runs in this process (recorded if it does). */
  runs(role: WorkerRole, duty: string): boolean {
    if (!this.roles.has(role)) return false;
    this.running.add(duty);
    return true;
  }

  /** The duties that asked and run here, sorted. */
  get duties(): string[] {
    return [...this.running].sort();
  }
}
