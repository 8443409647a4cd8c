import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { RuleEntity } from './entities/rule.entity';
import { EvaluationState, WindowPoint } from './evaluator';

/** The device as the rules see it (read from tenancy by the evaluator). */
export interface CoveredDevice {
  id: string;
  projectId: string;
  tags: string[];
}

/**
 * The evaluator's side of the rules tables (worker only): the rules covering a device and
 * each rule's window state for it (`rule_device_state`, at most window_n points per rule
 * and device, so evaluation never re-reads history). Keyed by the device a job carries,
 * inside the evaluation transaction; the transaction manager comes first.
 */
@Injectable()
export class DeviceRulesRepository {
  constructor(@InjectRepository(RuleEntity) private readonly rules: Repository<RuleEntity>) {}

  /**
   * The enabled rules covering a device: ALL rules of its project, TAG rules whose tag the
   * device carries now, EXPLICIT rules it is assigned to.
   */
  covering(em: EntityManager, device: CoveredDevice): Promise<RuleEntity[]> {
    return em
      .getRepository(RuleEntity)
      .createQueryBuilder('r')
      .where('r.project_id = :projectId AND r.enabled', { projectId: device.projectId })
      .andWhere(
        `(r.scope = 'ALL'
          OR (r.scope = 'TAG' AND r.tag = ANY (CAST(:tags AS text[])))
          OR (r.scope = 'EXPLICIT' AND EXISTS (
                SELECT 1 FROM rule_devices rd WHERE rd.rule_id = r.id AND rd.device_id = :deviceId)))`,
        { tags: device.tags, deviceId: device.id },
      )
      .orderBy('r.created_at')
      .addOrderBy('r.id')
      .getMany();
  }

  /** Each rule's saved state for the device (rules never evaluated for it are absent). */
  async states(
    em: EntityManager,
    deviceId: string,
    ruleIds: string[],
  ): Promise<Map<string, EvaluationState>> {
    if (ruleIds.length === 0) return new Map();
    const rows: Array<{ rule_id: string; window: WindowPoint[]; last_triggered_at: Date | null }> =
      await em.query(
        `SELECT rule_id, "window", last_triggered_at FROM rule_device_state
          WHERE device_id = $1 AND rule_id = ANY ($2::uuid[])`,
        [deviceId, ruleIds],
      );
    return new Map(
      rows.map((r) => [
        r.rule_id,
        { window: r.window, lastTriggeredAt: r.last_triggered_at?.getTime() ?? null, open: false },
      ]),
    );
  }

  /** Every rule's new state for the device in one statement. */
  async saveStates(
    em: EntityManager,
    deviceId: string,
    states: Array<{ ruleId: string; state: EvaluationState }>,
  ): Promise<void> {
    await em.query(
      `INSERT INTO rule_device_state (rule_id, device_id, "window", last_triggered_at)
       SELECT s.rule_id, $1, s.win, s.last FROM unnest($2::uuid[], $3::jsonb[], $4::timestamptz[]) AS s(rule_id, win, last)
       ON CONFLICT (rule_id, device_id) DO UPDATE
         SET "window" = EXCLUDED."window", last_triggered_at = EXCLUDED.last_triggered_at`,
      [
        deviceId,
        states.map((s) => s.ruleId),
        states.map((s) => JSON.stringify(s.state.window)),
        states.map((s) =>
          s.state.lastTriggeredAt === null ? null : new Date(s.state.lastTriggeredAt).toISOString(),
        ),
      ],
    );
  }
}
