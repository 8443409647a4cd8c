import { ConflictError } from '@app/common';
import { isUniqueViolation, pageByCreated } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Not, Repository } from 'typeorm';
import { ProjectEntity } from '../entities';

@Injectable()
export class ProjectsRepository {
  constructor(
    @InjectRepository(ProjectEntity) private readonly projects: Repository<ProjectEntity>,
  ) {}

  async create(
    orgId: string,
    values: { name: string; autoRegisterDevices?: boolean; retentionDays?: number | null },
  ): Promise<ProjectEntity> {
    try {
      return await this.projects.save(this.projects.create({ orgId, ...values }));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError(`a project named "${values.name}" already exists in this org`);
      }
      throw err;
    }
  }

  findInOrg(orgId: string, projectId: string): Promise<ProjectEntity | null> {
    return this.projects.findOneBy({ orgId, id: projectId });
  }

  /** Admin routes address projects by id alone; named exception to tenant-first. */
  findById(projectId: string): Promise<ProjectEntity | null> {
    return this.projects.findOneBy({ id: projectId });
  }

  async update(
    projectId: string,
    values: { name?: string; autoRegisterDevices?: boolean; retentionDays?: number | null },
  ): Promise<void> {
    // An empty patch changes nothing (TypeORM refuses an UPDATE without a SET).
    if (!Object.values(values).some((v) => v !== undefined)) return;
    try {
      await this.projects.update({ id: projectId }, values);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError(`a project named "${values.name}" already exists in this org`);
      }
      throw err;
    }
  }

  /**
   * Every project with a retention of its own, for the worker's retention duty: a
   * platform-wide read, the named exception to tenant-first.
   */
  async withRetention(): Promise<Array<{ id: string; retentionDays: number }>> {
    const rows = await this.projects.find({
      select: { id: true, retentionDays: true },
      where: { retentionDays: Not(IsNull()) },
    });
    return rows.map((p) => ({ id: p.id, retentionDays: p.retentionDays! }));
  }

  list(orgId: string, limit: number, cursor?: string): Promise<ProjectEntity[]> {
    const qb = this.projects.createQueryBuilder('p').where('p.org_id = :orgId', { orgId });
    return pageByCreated(qb, limit, cursor);
  }
}
