import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { AlertEventsRepository } from './alert-events.repository';
import { transitionAlert } from './alert-transition.repository';
import { AlertEntity } from './entities/alert.entity';

/**
 * The evaluator's side of `alerts` (worker only): a device's active alerts, and opening
 * and resolving them, each with its outbox event in the same transaction. Keyed by the
 * device a job carries (its project was checked when it was queued), inside the device's
 * evaluation lock ({@link DeviceAlertLock}).
 */
@Injectable()
export class DeviceAlertsRepository {
  constructor(private readonly events: AlertEventsRepository) {}

  /** Active alerts across every project, by status: an operator's gauge, no tenant in it. */
  async countActive(em: EntityManager): Promise<Record<'open' | 'acknowledged', number>> {
    const rows = (await em.query(
      `SELECT status, count(*)::int AS n FROM alerts
        WHERE status IN ('open', 'acknowledged') GROUP BY status`,
    )) as Array<{ status: 'open' | 'acknowledged'; n: number }>;
    const counts = { open: 0, acknowledged: 0 };
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  /** Active (open or acknowledged) alerts of a device, by rule. */
  async active(em: EntityManager, deviceId: string): Promise<Map<string, string>> {
    const rows = await em
      .getRepository(AlertEntity)
      .createQueryBuilder('a')
      .select(['a.id', 'a.ruleId'])
      .where('a.device_id = :deviceId', { deviceId })
      .andWhere(`a.status IN ('open', 'acknowledged')`)
      .getMany();
    return new Map(rows.map((r) => [r.ruleId, r.id]));
  }

  /** Opens an alert and writes its event (`alert.created`; `device.offline` for an offline rule). */
  async open(
    em: EntityManager,
    values: {
      projectId: string;
      ruleId: string;
      deviceId: string;
      triggeredAt: Date;
      details: Record<string, unknown>;
    },
    event: 'alert.created' | 'device.offline' = 'alert.created',
  ): Promise<AlertEntity> {
    const repo = em.getRepository(AlertEntity);
    const alert = await repo.save(
      repo.create({ ...values, status: 'open', acknowledgedAt: null, resolvedAt: null }),
    );
    await this.events.record(em, alert, event);
    return alert;
  }

  /** Resolves an active alert once, with its event; null when it was no longer active. */
  resolve(
    em: EntityManager,
    alertId: string,
    at: Date,
    resolution: string,
    event: 'alert.resolved' | 'device.online' = 'alert.resolved',
  ): Promise<AlertEntity | null> {
    return transitionAlert(em, this.events, alertId, {
      from: ['open', 'acknowledged'],
      to: 'resolved',
      at,
      details: { resolution },
      event,
    });
  }
}
