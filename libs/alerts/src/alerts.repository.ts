import { decodeTimeIdCursor } from '@app/common';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { toAlertResponse } from './alerts.mappers';
import { AlertEntity, AlertStatus } from './entities/alert.entity';

export interface AlertFilter {
  status?: AlertStatus;
  ruleId?: string;
  deviceId?: string;
  from?: string;
  to?: string;
}

export type AlertEventType = 'alert.created' | 'alert.acknowledged' | 'alert.resolved';

@Injectable()
export class AlertsRepository {
  constructor(@InjectRepository(AlertEntity) private readonly alerts: Repository<AlertEntity>) {}

  find(projectId: string, alertId: string, em?: EntityManager): Promise<AlertEntity | null> {
    return (em?.getRepository(AlertEntity) ?? this.alerts).findOneBy({ projectId, id: alertId });
  }

  /** Newest first by (triggered_at, id); the cursor is the last row's pair. */
  list(
    projectId: string,
    filter: AlertFilter,
    limit: number,
    cursor?: string,
  ): Promise<AlertEntity[]> {
    const qb = this.alerts
      .createQueryBuilder('a')
      .where('a.project_id = :projectId', { projectId });
    if (filter.status) qb.andWhere('a.status = :status', { status: filter.status });
    if (filter.ruleId) qb.andWhere('a.rule_id = :ruleId', { ruleId: filter.ruleId });
    if (filter.deviceId) qb.andWhere('a.device_id = :deviceId', { deviceId: filter.deviceId });
    if (filter.from) qb.andWhere('a.triggered_at >= :from', { from: filter.from });
    if (filter.to) qb.andWhere('a.triggered_at < :to', { to: filter.to });
    if (cursor) {
      const [triggeredAt, id] = decodeTimeIdCursor(cursor);
      qb.andWhere('(a.triggered_at, a.id) < (:triggeredAt, :id)', { triggeredAt, id });
    }
    return qb
      .orderBy('a.triggered_at', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .limit(limit + 1)
      .getMany();
  }

  async open(
    em: EntityManager,
    values: {
      projectId: string;
      ruleId: string;
      deviceId: string;
      triggeredAt: Date;
      details: Record<string, unknown>;
    },
  ): Promise<AlertEntity> {
    const repo = em.getRepository(AlertEntity);
    return repo.save(
      repo.create({ ...values, status: 'open', acknowledgedAt: null, resolvedAt: null }),
    );
  }

  /** Moves an alert between states once: the WHERE makes a repeated or racing change a no-op. */
  async transition(
    em: EntityManager,
    alertId: string,
    from: AlertStatus[],
    to: 'acknowledged' | 'resolved',
    at: Date,
    details?: Record<string, unknown>,
  ): Promise<AlertEntity | null> {
    const column = to === 'acknowledged' ? 'acknowledged_at' : 'resolved_at';
    const [rows] = (await em.query(
      `UPDATE alerts SET status = $3, ${column} = $4, details = details || $5::jsonb
        WHERE id = $1 AND status = ANY ($2::text[]) RETURNING id`,
      [alertId, from, to, at.toISOString(), JSON.stringify(details ?? {})],
    )) as [Array<{ id: string }>, number];
    if (rows.length === 0) return null;
    return em.getRepository(AlertEntity).findOneByOrFail({ id: alertId });
  }

  /** Active (open or acknowledged) alerts of a device, by rule. */
  async activeForDevice(em: EntityManager, deviceId: string): Promise<Map<string, string>> {
    const rows: Array<{ id: string; rule_id: string }> = await em.query(
      `SELECT id, rule_id FROM alerts WHERE device_id = $1 AND status IN ('open', 'acknowledged')`,
      [deviceId],
    );
    return new Map(rows.map((r) => [r.rule_id, r.id]));
  }

  async activeForRule(
    em: EntityManager,
    ruleId: string,
  ): Promise<Array<{ id: string; device_id: string }>> {
    return em.query(
      // Device order: two closes sharing devices take their locks in the same order.
      `SELECT id, device_id FROM alerts WHERE rule_id = $1 AND status IN ('open', 'acknowledged') ORDER BY device_id`,
      [ruleId],
    );
  }

  /** Outbox: the alert's event, written in the same transaction as the alert change. */
  async record(em: EntityManager, alert: AlertEntity, type: AlertEventType): Promise<void> {
    await em.query(
      `INSERT INTO alert_events (project_id, alert_id, type, payload) VALUES ($1, $2, $3, $4)`,
      [alert.projectId, alert.id, type, JSON.stringify(await eventPayload(em, alert))],
    );
  }

  /** {@link transition} and, when it happened, its outbox event. */
  async transitionAndRecord(
    em: EntityManager,
    alertId: string,
    from: AlertStatus[],
    to: 'acknowledged' | 'resolved',
    at: Date,
    details?: Record<string, unknown>,
  ): Promise<AlertEntity | null> {
    const alert = await this.transition(em, alertId, from, to, at, details);
    if (alert)
      await this.record(em, alert, to === 'acknowledged' ? 'alert.acknowledged' : 'alert.resolved');
    return alert;
  }
}

/** The `data` of a webhook event: the alert, the rule (id, name), the device and the project. */
export async function eventPayload(
  em: EntityManager,
  alert: AlertEntity,
): Promise<Record<string, unknown>> {
  const [device] = await em.query(`SELECT id, external_id FROM devices WHERE id = $1`, [
    alert.deviceId,
  ]);
  const rule = (alert.details.rule as { id?: string; name?: string } | undefined) ?? {};
  return {
    alert: toAlertResponse(alert),
    rule: { id: alert.ruleId, name: rule.name ?? null },
    device: { id: alert.deviceId, external_id: device?.external_id ?? null },
    project_id: alert.projectId,
  };
}
