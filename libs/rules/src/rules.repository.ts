import { ConflictError, ProjectId } from '@app/common';
import { isUniqueViolation, pageByCreated, saveUnderQuota } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { RuleEntity } from './entities/rule.entity';

/**
 * A project's rules, their device assignments (`rule_devices`) and, to forget it, their
 * per-device evaluation state: every method takes the project first, and a rule of
 * another project is never touched. The evaluator's side, keyed by device, is
 * {@link DeviceRulesRepository}.
 */
@Injectable()
export class RulesRepository {
  constructor(@InjectRepository(RuleEntity) private readonly rules: Repository<RuleEntity>) {}

  /**
   * Creates a rule; 409 when the project has a rule of that name (case-insensitively),
   * 422 past the project's rule quota.
   */
  async create(
    projectId: ProjectId,
    values: Omit<RuleEntity, 'id' | 'projectId' | 'createdAt' | 'updatedAt'>,
    quota: number,
  ): Promise<RuleEntity> {
    try {
      return await saveUnderQuota(
        this.rules,
        { what: 'rules', projectId, limit: quota },
        { projectId, ...values },
      );
    } catch (err) {
      throw nameTaken(err, values.name);
    }
  }

  find(projectId: ProjectId, ruleId: string): Promise<RuleEntity | null> {
    return this.rules.findOneBy({ projectId, id: ruleId });
  }

  list(projectId: ProjectId, limit: number, cursor?: string): Promise<RuleEntity[]> {
    const qb = this.rules.createQueryBuilder('r').where('r.project_id = :projectId', { projectId });
    return pageByCreated(qb, limit, cursor);
  }

  /** 409 when renamed to the name of another rule of the project. */
  async update(projectId: ProjectId, ruleId: string, values: Partial<RuleEntity>): Promise<void> {
    try {
      await this.rules.update({ projectId, id: ruleId }, values);
    } catch (err) {
      throw nameTaken(err, values.name);
    }
  }

  /** Forgets every device's window for the rule (its metric changed: old values don't count). */
  async resetState(projectId: ProjectId, ruleId: string): Promise<void> {
    await this.rules.query(
      `DELETE FROM rule_device_state s USING rules r
        WHERE r.id = s.rule_id AND r.project_id = $1 AND s.rule_id = $2`,
      [projectId, ruleId],
    );
  }

  async delete(projectId: ProjectId, ruleId: string): Promise<boolean> {
    const res = await this.rules.delete({ projectId, id: ruleId });
    return (res.affected ?? 0) > 0;
  }

  /** Idempotent; the caller has checked that every device is in the project. */
  async assign(projectId: ProjectId, ruleId: string, deviceIds: string[]): Promise<void> {
    await this.rules.query(
      `INSERT INTO rule_devices (rule_id, device_id)
       SELECT r.id, d FROM rules r, unnest($3::uuid[]) AS d
        WHERE r.id = $2 AND r.project_id = $1
       ON CONFLICT DO NOTHING`,
      [projectId, ruleId, deviceIds],
    );
  }

  async assigned(projectId: ProjectId, ruleId: string): Promise<string[]> {
    const rows: Array<{ device_id: string }> = await this.rules.query(
      `SELECT rd.device_id FROM rule_devices rd JOIN rules r ON r.id = rd.rule_id
        WHERE r.project_id = $1 AND rd.rule_id = $2 ORDER BY rd.device_id`,
      [projectId, ruleId],
    );
    return rows.map((r) => r.device_id);
  }

  async unassign(projectId: ProjectId, ruleId: string, deviceId: string): Promise<boolean> {
    const [, affected] = (await this.rules.query(
      `DELETE FROM rule_devices rd USING rules r
        WHERE r.id = rd.rule_id AND r.project_id = $1 AND rd.rule_id = $2 AND rd.device_id = $3`,
      [projectId, ruleId, deviceId],
    )) as [unknown, number];
    return affected > 0;
  }
}

/**
 * A unique violation on `rules` can only be its one unique index, (project_id, lower(name)):
 * a 409 naming the name. Anything else is rethrown as it is.
 */
function nameTaken(err: unknown, name: string | undefined): unknown {
  if (!isUniqueViolation(err)) return err;
  return new ConflictError(`a rule named "${name ?? ''}" already exists in this project`);
}
