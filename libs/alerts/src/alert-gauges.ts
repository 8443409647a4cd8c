import { withDeadline } from '@app/common';
import { WorkerRoles } from '@app/config';
import { MetricsService } from '@app/observability';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DeviceAlertsRepository } from './device-alerts.repository';

/**
 * `alerts_active{status}`: open and acknowledged alerts right now, counted when Prometheus
 * scrapes, by the processes that consume alert events (role `alert-events`; every replica
 * reports the same figure: `max` them). A scrape while PostgreSQL is away keeps the last
 * values.
 */
@Injectable()
export class AlertGauges {
  constructor(
    metrics: MetricsService,
    roles: WorkerRoles,
    @InjectDataSource() dataSource: DataSource,
    alerts: DeviceAlertsRepository,
  ) {
    if (!roles.runs('alert-events', 'alerts gauge')) return;
    // A scrape waits at most 2 s: a PostgreSQL incident must not hold /metrics up.
    const count = () =>
      withDeadline(alerts.countActive(dataSource.manager), 2000).catch(() => null);
    metrics.gauge(
      'alerts_active',
      'open and acknowledged alerts now',
      ['status'],
      async function () {
        const counts = await count();
        if (counts) for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    );
  }
}
