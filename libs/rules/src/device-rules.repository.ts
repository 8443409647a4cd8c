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
   * The enabled rules covering a device (ALL rules of its project, TAG rules whose tag the
   * device carries now, EXPLICIT rules it is assigned to), each with its saved state for
   * the device (rules never evaluated for it have none): one statement for both, read
   * under the device's evaluation lock.
   */
  async covering(
    em: EntityManager,
    device: CoveredDevice,
  ): Promise<{ rules: RuleEntity[]; states: Map<string, EvaluationState> }> {
    const { entities, raw } = await em
      .getRepository(RuleEntity)
      .createQueryBuilder('r')
      // The device's states as a subquery that names device_id itself: a single-shard
      // read where rule_device_state is distributed by device (docs/scaling.md).
      .leftJoin(
        `(SELECT rule_id, "window", last_triggered_at FROM rule_device_state
           WHERE device_id = :deviceId)`,
        's',
        's.rule_id = r.id',
      )
      .addSelect('s."window"', 's_window')
      .addSelect('s.last_triggered_at', 's_last_triggered_at')
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
      .getRawAndEntities<{
        r_id: string;
        s_window: WindowPoint[] | null;
        s_last_triggered_at: Date | null;
      }>();
    const states = new Map<string, EvaluationState>();
    // At most one state per rule and device (its key): one raw row per rule.
    for (const row of raw)
      if (row.s_window !== null)
        states.set(row.r_id, {
          window: row.s_window,
          lastTriggeredAt: row.s_last_triggered_at?.getTime() ?? null,
          open: false,
        });
    return { rules: entities, states };
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
