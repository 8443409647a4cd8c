import { ProjectId } from '@app/common';
import { keysetPage } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { AlertEventsRepository } from './alert-events.repository';
import { AlertChange, transitionAlert } from './alert-transition.repository';
import { AlertEntity, AlertStatus } from './entities/alert.entity';

export interface AlertFilter {
  status?: AlertStatus;
  ruleId?: string;
  deviceId?: string;
  from?: string;
  to?: string;
}

/**
 * A project's alerts, as the api reads and changes them: every method takes the project
 * first (after the transaction manager). The evaluator's side, keyed by device, is
 * {@link DeviceAlertsRepository}.
 */
@Injectable()
export class AlertsRepository {
  constructor(
    @InjectRepository(AlertEntity) private readonly alerts: Repository<AlertEntity>,
    private readonly events: AlertEventsRepository,
  ) {}

  find(em: EntityManager, projectId: ProjectId, alertId: string): Promise<AlertEntity | null> {
    return em.getRepository(AlertEntity).findOneBy({ projectId, id: alertId });
  }

  /** Newest first by (triggered_at, id); the cursor is the last row's pair. */
  list(
    projectId: ProjectId,
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
    return keysetPage(qb, { column: 'triggered_at', order: 'DESC' }, limit, cursor);
  }

  /** A rule's active (open or acknowledged) alerts, in device order. */
  activeForRule(
    em: EntityManager,
    projectId: ProjectId,
    ruleId: string,
  ): Promise<Array<{ id: string; deviceId: string }>> {
    return (
      em
        .getRepository(AlertEntity)
        .createQueryBuilder('a')
        .select(['a.id', 'a.deviceId'])
        .where('a.project_id = :projectId AND a.rule_id = :ruleId', { projectId, ruleId })
        .andWhere(`a.status IN ('open', 'acknowledged')`)
        // Device order: two closes sharing devices take their locks in the same order.
        .orderBy('a.device_id')
        .getMany()
    );
  }

  /** Changes the alert once and writes its outbox event; null when it did not move. */
  change(
    em: EntityManager,
    projectId: ProjectId,
    alertId: string,
    change: AlertChange,
  ): Promise<AlertEntity | null> {
    return transitionAlert(em, this.events, alertId, change, projectId);
  }
}
