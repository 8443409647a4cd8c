import { pageByCreated, saveUnderQuota } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { RuleEntity } from './entities/rule.entity';

@Injectable()
export class RulesRepository {
  constructor(@InjectRepository(RuleEntity) private readonly rules: Repository<RuleEntity>) {}

  /** Creates a rule; 422 past the project's rule quota. */
  create(
    projectId: string,
    values: Omit<RuleEntity, 'id' | 'projectId' | 'createdAt' | 'updatedAt'>,
    quota: number,
  ): Promise<RuleEntity> {
    return saveUnderQuota(
      this.rules,
      { table: 'rules', projectId, limit: quota },
      { projectId, ...values },
    );
  }

  find(projectId: string, ruleId: string): Promise<RuleEntity | null> {
    return this.rules.findOneBy({ projectId, id: ruleId });
  }

  list(projectId: string, limit: number, cursor?: string): Promise<RuleEntity[]> {
    const qb = this.rules.createQueryBuilder('r').where('r.project_id = :projectId', { projectId });
    return pageByCreated(qb, limit, cursor);
  }

  async update(projectId: string, ruleId: string, values: Partial<RuleEntity>): Promise<void> {
    await this.rules.update({ projectId, id: ruleId }, values);
  }

  /** Forgets every device's window for the rule (its metric changed: old values don't count). */
  async resetState(ruleId: string): Promise<void> {
    await this.rules.query(`DELETE FROM rule_device_state WHERE rule_id = $1`, [ruleId]);
  }

  async delete(projectId: string, ruleId: string): Promise<boolean> {
    const res = await this.rules.delete({ projectId, id: ruleId });
    return (res.affected ?? 0) > 0;
  }

  /** Idempotent; the caller has checked that every device is in the project. */
  async assign(ruleId: string, deviceIds: string[]): Promise<void> {
    await this.rules.query(
      `INSERT INTO rule_devices (rule_id, device_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
      [ruleId, deviceIds],
    );
  }

  async assigned(ruleId: string): Promise<string[]> {
    const rows: Array<{ device_id: string }> = await this.rules.query(
      `SELECT device_id FROM rule_devices WHERE rule_id = $1 ORDER BY device_id`,
      [ruleId],
    );
    return rows.map((r) => r.device_id);
  }

  async unassign(ruleId: string, deviceId: string): Promise<boolean> {
    const [, affected] = (await this.rules.query(
      `DELETE FROM rule_devices WHERE rule_id = $1 AND device_id = $2`,
      [ruleId, deviceId],
    )) as [unknown, number];
    return affected > 0;
  }

  /**
   * The enabled rules covering a device, read inside the evaluation transaction: ALL rules
   * of its project, TAG rules whose tag the device carries now, EXPLICIT rules it is
   * assigned to.
   */
  async forDevice(em: EntityManager, deviceId: string): Promise<RuleEntity[]> {
    const rows: Array<Record<string, unknown>> = await em.query(
      `SELECT r.* FROM rules r JOIN devices d ON d.project_id = r.project_id
        WHERE d.id = $1 AND r.enabled
          AND (r.scope = 'ALL'
               OR (r.scope = 'TAG' AND r.tag = ANY (d.tags))
               OR (r.scope = 'EXPLICIT' AND EXISTS (SELECT 1 FROM rule_devices rd WHERE rd.rule_id = r.id AND rd.device_id = d.id)))
        ORDER BY r.created_at, r.id`,
      [deviceId],
    );
    return rows.map((r) =>
      this.rules.create({
        id: r.id as string,
        projectId: r.project_id as string,
        name: r.name as string,
        metric: r.metric as string,
        operator: r.operator as RuleEntity['operator'],
        threshold: Number(r.threshold),
        windowN: Number(r.window_n),
        requiredK: Number(r.required_k),
        cooldownSeconds: Number(r.cooldown_seconds),
        scope: r.scope as RuleEntity['scope'],
        tag: r.tag as string | null,
        enabled: r.enabled as boolean,
        createdAt: r.created_at as Date,
        updatedAt: r.updated_at as Date,
      }),
    );
  }
}
