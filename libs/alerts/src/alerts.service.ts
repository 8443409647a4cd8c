import { AppError, NotFoundError, Page, toPage } from '@app/common';
import { LOCK_CLASS, lockForTransaction } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AlertFilter, AlertsRepository, AlertEventType } from './alerts.repository';
import { toAlertResponse } from './alerts.mappers';
import { AlertResponse } from './dto/alerts.dto';
import { AlertEntity } from './entities/alert.entity';

const cursorOf = (a: AlertEntity): string[] => [a.triggeredAt.toISOString(), a.id];

/** Alerts through the API: lists, ack, manual resolve, and closing a disabled rule's alerts. */
@Injectable()
export class AlertsService {
  constructor(
    private readonly alerts: AlertsRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async list(
    projectId: string,
    filter: AlertFilter,
    limit = 100,
    cursor?: string,
  ): Promise<Page<AlertResponse>> {
    return toPage(
      await this.alerts.list(projectId, filter, limit, cursor),
      limit,
      toAlertResponse,
      cursorOf,
    );
  }

  async get(projectId: string, alertId: string): Promise<AlertResponse> {
    const alert = await this.alerts.find(projectId, alertId);
    if (!alert) throw new NotFoundError('alert');
    return toAlertResponse(alert);
  }

  /** open → acknowledged; acknowledging again is a no-op; a resolved alert can't be (409). */
  acknowledge(projectId: string, alertId: string): Promise<AlertResponse> {
    return this.change(projectId, alertId, 'acknowledged', ['open'], 'alert.acknowledged');
  }

  /** open|acknowledged → resolved (resolved_at = now); resolving again is a no-op. */
  resolve(projectId: string, alertId: string): Promise<AlertResponse> {
    return this.change(projectId, alertId, 'resolved', ['open', 'acknowledged'], 'alert.resolved');
  }

  /** A rule was disabled or deleted: its open alerts resolve now. */
  async closeRule(ruleId: string, reason: 'rule_disabled' | 'rule_deleted'): Promise<number> {
    return this.dataSource.transaction(async (em) => {
      let closed = 0;
      for (const active of await this.alerts.activeForRule(em, ruleId)) {
        await lockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, active.device_id);
        const alert = await this.alerts.transition(
          em,
          active.id,
          ['open', 'acknowledged'],
          'resolved',
          new Date(),
          {
            resolution: reason,
          },
        );
        if (alert) {
          await this.alerts.addEvent(
            em,
            alert.projectId,
            alert.id,
            'alert.resolved',
            await eventPayload(em, alert),
          );
          closed++;
        }
      }
      return closed;
    });
  }

  private async change(
    projectId: string,
    alertId: string,
    to: 'acknowledged' | 'resolved',
    from: Array<'open' | 'acknowledged'>,
    event: AlertEventType,
  ): Promise<AlertResponse> {
    return this.dataSource.transaction(async (em) => {
      const alert = await this.alerts.find(projectId, alertId, em);
      if (!alert) throw new NotFoundError('alert');
      // The same lock as evaluation: a manual resolve and an evaluator never race on it.
      await lockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, alert.deviceId);
      const changed = await this.alerts.transition(
        em,
        alertId,
        from,
        to,
        new Date(),
        to === 'resolved' ? { resolution: 'manual' } : undefined,
      );
      if (changed) {
        await this.alerts.addEvent(em, projectId, alertId, event, await eventPayload(em, changed));
        return toAlertResponse(changed);
      }
      const current = (await this.alerts.find(projectId, alertId, em))!;
      if (current.status === to) return toAlertResponse(current);
      throw new AppError('conflict', `a ${current.status} alert cannot be ${to}`);
    });
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
