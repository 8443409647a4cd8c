import { ProjectId } from '@app/common';
import { DeviceProgressRepository } from '@app/tenancy';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { toAlertResponse } from './alerts.mappers';
import { AlertEntity } from './entities/alert.entity';

const COLUMNS = 'id, project_id, alert_id, type, payload, created_at, unmuted_at';

export type AlertEventType =
  | 'alert.created'
  | 'alert.acknowledged'
  | 'alert.resolved'
  | 'alert.reminder'
  | 'device.offline'
  | 'device.online';

/**
 * The event `POST /webhooks/{id}/test` sends: no alert behind it, one delivery (to the
 * webhook asked for), never fanned out.
 */
export const TEST_EVENT_TYPE = 'webhook.test';

/** The `data` of a `webhook.test` event. */
export interface TestEventPayload {
  webhook_id: string;
  project_id: string;
  message: string;
  sent_at: string;
}

/** An outbox event as the webhook fan-out and sender see it. */
export interface AlertEventRecord {
  id: string;
  projectId: string;
  type: AlertEventType | typeof TEST_EVENT_TYPE;
  /** Null for a `webhook.test` event. */
  alertId: string | null;
  /** The webhook event's `data`. */
  payload: Record<string, unknown>;
  createdAt: Date;
  /** Muted by a silence, then handed back once none covered its alert: sent regardless. */
  unmutedAt: Date | null;
}

/**
 * The outbox (`alert_events`): an alert's change and its event are written in one
 * transaction; the relay hands undispatched events to the alert-events queue; the
 * webhook fan-out marks an event dispatched in the transaction that creates its
 * deliveries. Worker paths are keyed by event id (the event carries its project).
 */
@Injectable()
export class AlertEventsRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly devices: DeviceProgressRepository,
  ) {}

  /** The alert's event, written in the same transaction as the alert change. */
  async record(em: EntityManager, alert: AlertEntity, type: AlertEventType): Promise<void> {
    await em.query(
      `INSERT INTO alert_events (project_id, alert_id, type, payload) VALUES ($1, $2, $3, $4)`,
      [alert.projectId, alert.id, type, JSON.stringify(await this.payload(em, alert))],
    );
  }

  /**
   * A `webhook.test` event of the project, in the caller's transaction. Written dispatched:
   * its one delivery is created by the caller in the same transaction, so the outbox relay
   * never hands it to the fan-out (which would offer it to the project's other webhooks).
   */
  async recordTest(
    em: EntityManager,
    projectId: ProjectId,
    data: Pick<TestEventPayload, 'webhook_id' | 'message'>,
  ): Promise<AlertEventRecord> {
    const at = new Date();
    const payload: TestEventPayload = {
      webhook_id: data.webhook_id,
      project_id: projectId,
      message: data.message,
      sent_at: at.toISOString(),
    };
    const [row] = (await em.query(
      `INSERT INTO alert_events (project_id, alert_id, type, payload, created_at, dispatched_at)
       VALUES ($1, NULL, $2, $3, $4, now())
       RETURNING ${COLUMNS}`,
      [projectId, TEST_EVENT_TYPE, JSON.stringify(payload), at],
    )) as EventRow[];
    return toRecord(row);
  }

  /** The `data` of a webhook event: the alert, the rule (id, name), the device and the project. */
  private async payload(em: EntityManager, alert: AlertEntity): Promise<Record<string, unknown>> {
    const rule = (alert.details.rule as { id?: string; name?: string } | undefined) ?? {};
    return {
      alert: toAlertResponse(alert),
      rule: { id: alert.ruleId, name: rule.name ?? null },
      device: {
        id: alert.deviceId,
        external_id: await this.devices.externalId(em, alert.deviceId),
      },
      project_id: alert.projectId,
    };
  }

  /**
   * Up to `limit` undispatched events to hand on, oldest first: never handed on, or handed
   * on more than `againAfterSeconds` ago. Locked for the transaction, skipping rows another
   * relay holds, so two relays never hand one event on at once.
   */
  async takeForRelay(
    em: EntityManager,
    limit: number,
    againAfterSeconds: number,
  ): Promise<Array<{ id: string; projectId: string }>> {
    const rows: Array<{ id: string; project_id: string }> = await em.query(
      `SELECT id, project_id FROM alert_events
        WHERE dispatched_at IS NULL
          AND (relayed_at IS NULL OR relayed_at < now() - $2 * interval '1 second')
        ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit, againAfterSeconds],
    );
    return rows.map((r) => ({ id: r.id, projectId: r.project_id }));
  }

  async markRelayed(em: EntityManager, eventIds: string[]): Promise<void> {
    await em.query(`UPDATE alert_events SET relayed_at = now() WHERE id = ANY ($1::uuid[])`, [
      eventIds,
    ]);
  }

  /** The event, locked for the fan-out's transaction; null when it no longer exists. */
  async lockForFanOut(em: EntityManager, eventId: string): Promise<AlertEventRecord | null> {
    return this.one(em, `SELECT ${COLUMNS} FROM alert_events WHERE id = $1 FOR UPDATE`, eventId);
  }

  /**
   * The undispatched events of these alerts that were never handed to the alert-events
   * queue, oldest first, locked for the caller's transaction (the one that wrote them, for
   * the fan-out there: {@link EventFanOut}). An event the relay handed on is its queued
   * job's to fan out, and rows another transaction holds are skipped: that one sees to
   * them.
   */
  async lockUndispatchedOf(em: EntityManager, alertIds: string[]): Promise<AlertEventRecord[]> {
    const rows = (await em.query(
      `SELECT ${COLUMNS} FROM alert_events
        WHERE dispatched_at IS NULL AND relayed_at IS NULL AND alert_id = ANY ($1::uuid[])
        ORDER BY created_at, id FOR UPDATE SKIP LOCKED`,
      [alertIds],
    )) as EventRow[];
    return rows.map(toRecord);
  }

  /** Their deliveries exist: the relay leaves them alone from now on. */
  async markDispatched(em: EntityManager, eventIds: string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await em.query(
      `UPDATE alert_events SET dispatched_at = now()
        WHERE id = ANY ($1::uuid[]) AND dispatched_at IS NULL`,
      [eventIds],
    );
  }

  /** The event to send; null when it no longer exists. */
  find(eventId: string): Promise<AlertEventRecord | null> {
    return this.one(
      this.dataSource.manager,
      `SELECT ${COLUMNS} FROM alert_events WHERE id = $1`,
      eventId,
    );
  }

  private async one(
    em: EntityManager,
    sql: string,
    eventId: string,
  ): Promise<AlertEventRecord | null> {
    const [row] = (await em.query(sql, [eventId])) as EventRow[];
    return row ? toRecord(row) : null;
  }
}

interface EventRow {
  id: string;
  project_id: string;
  alert_id: string | null;
  type: AlertEventRecord['type'];
  payload: Record<string, unknown>;
  created_at: Date;
  unmuted_at: Date | null;
}

const toRecord = (row: EventRow): AlertEventRecord => ({
  id: row.id,
  projectId: row.project_id,
  type: row.type,
  alertId: row.alert_id,
  payload: row.payload,
  createdAt: row.created_at,
  unmutedAt: row.unmuted_at,
});
