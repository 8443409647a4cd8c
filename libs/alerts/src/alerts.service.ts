import { AppError, NotFoundError, Page, ProjectId, toPage } from '@app/common';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AlertFilter, AlertsRepository } from './alerts.repository';
import { toAlertResponse } from './alerts.mappers';
import { DeviceAlertLock } from './device-alert-lock';
import { AlertResponse } from './dto/alerts.dto';
import { AlertEntity } from './entities/alert.entity';

const cursorOf = (a: AlertEntity): string[] => [a.triggeredAt.toISOString(), a.id];

/** Alerts through the API: lists, ack, manual resolve, and closing a disabled rule's alerts. */
@Injectable()
export class AlertsService {
  constructor(
    private readonly alerts: AlertsRepository,
    private readonly lock: DeviceAlertLock,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  async list(
    projectId: ProjectId,
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

  async get(projectId: ProjectId, alertId: string): Promise<AlertResponse> {
    const alert = await this.alerts.find(this.dataSource.manager, projectId, alertId);
    if (!alert) throw new NotFoundError('alert');
    return toAlertResponse(alert);
  }

  /** open → acknowledged; acknowledging again is a no-op; a resolved alert can't be (409). */
  acknowledge(projectId: ProjectId, alertId: string): Promise<AlertResponse> {
    return this.change(projectId, alertId, 'acknowledged', ['open']);
  }

  /** open|acknowledged → resolved (resolved_at = now); resolving again is a no-op. */
  resolve(projectId: ProjectId, alertId: string): Promise<AlertResponse> {
    return this.change(projectId, alertId, 'resolved', ['open', 'acknowledged']);
  }

  /** A rule was disabled or deleted: its open alerts resolve now. */
  async closeRule(
    projectId: ProjectId,
    ruleId: string,
    reason: 'rule_disabled' | 'rule_deleted',
  ): Promise<number> {
    return this.dataSource.transaction(async (em) => {
      let closed = 0;
      for (const active of await this.alerts.activeForRule(em, projectId, ruleId)) {
        await this.lock.take(em, active.deviceId);
        const alert = await this.alerts.change(em, projectId, active.id, {
          from: ['open', 'acknowledged'],
          to: 'resolved',
          at: new Date(),
          details: { resolution: reason },
        });
        if (alert) closed++;
      }
      return closed;
    });
  }

  private async change(
    projectId: ProjectId,
    alertId: string,
    to: 'acknowledged' | 'resolved',
    from: Array<'open' | 'acknowledged'>,
  ): Promise<AlertResponse> {
    return this.dataSource.transaction(async (em) => {
      const alert = await this.alerts.find(em, projectId, alertId);
      if (!alert) throw new NotFoundError('alert');
      // The same lock as evaluation: a manual resolve and an evaluator never race on it.
      await this.lock.take(em, alert.deviceId);
      const changed = await this.alerts.change(em, projectId, alertId, {
        from,
        to,
        at: new Date(),
        details: to === 'resolved' ? { resolution: 'manual' } : undefined,
      });
      if (changed) return toAlertResponse(changed);
      const current = (await this.alerts.find(em, projectId, alertId))!;
      if (current.status === to) return toAlertResponse(current);
      throw new AppError('conflict', `a ${current.status} alert cannot be ${to}`);
    });
  }
}
