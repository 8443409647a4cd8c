import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { RuleEntity } from './entities/rule.entity';

/** An offline rule as the scan sees it, with its watermark. */
export interface OfflineRule {
  rule: RuleEntity;
  /** Devices last heard from before this were looked at already (null: none yet). */
  scannedUntil: Date | null;
}

/**
 * The offline scan's side of the rules tables (worker only): the enabled offline rules,
 * each one's watermark, and an EXPLICIT rule's devices. Keyed by rule id, inside the
 * scan's transaction; the transaction manager comes first.
 */
@Injectable()
export class OfflineRulesRepository {
  /** Ids of every enabled offline rule, oldest first. */
  async enabledIds(em: EntityManager): Promise<string[]> {
    const rows = (await em.query(
      `SELECT id FROM rules WHERE kind = 'offline' AND enabled ORDER BY created_at, id`,
    )) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  /**
   * The rule, locked for the transaction; null when it is gone, disabled, or another
   * scanner holds it (two workers never scan one rule at once); with `wait`, waits for
   * that scanner instead.
   */
  async lock(
    em: EntityManager,
    ruleId: string,
    { wait = false } = {},
  ): Promise<OfflineRule | null> {
    const query = em
      .getRepository(RuleEntity)
      .createQueryBuilder('r')
      .addSelect('r.offlineScannedUntil')
      .where(`r.id = :ruleId AND r.kind = 'offline' AND r.enabled`, { ruleId })
      .setLock('pessimistic_write');
    const rule = await (wait ? query : query.setOnLocked('skip_locked')).getOne();
    return rule ? { rule, scannedUntil: rule.offlineScannedUntil ?? null } : null;
  }

  async advance(em: EntityManager, ruleId: string, until: Date): Promise<void> {
    await em.query(`UPDATE rules SET offline_scanned_until = $2 WHERE id = $1`, [ruleId, until]);
  }

  /** The devices an EXPLICIT rule is assigned to. */
  async assigned(em: EntityManager, ruleId: string): Promise<string[]> {
    const rows = (await em.query(`SELECT device_id FROM rule_devices WHERE rule_id = $1`, [
      ruleId,
    ])) as Array<{ device_id: string }>;
    return rows.map((r) => r.device_id);
  }
}
