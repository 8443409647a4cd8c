import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppConfig } from './config';
import { WorkerRole } from './worker-roles';

/** Which worker roles this process runs (WORKER_QUEUES), for the roles' periodic duties. */
@Injectable()
export class WorkerRoles {
  private readonly roles: ReadonlySet<WorkerRole>;

  constructor(config: ConfigService<AppConfig, true>) {
    this.roles = new Set(config.get('worker', { infer: true }).roles);
  }

  runs(role: WorkerRole): boolean {
    return this.roles.has(role);
  }
}
