import type { DataSource, EntityManager } from 'typeorm';
import { AlertEventsRepository, AlertEventType } from './alert-events.repository';
import { AlertEntity, AlertStatus } from './entities/alert.entity';

export interface AlertChange {
  from: AlertStatus[];
  to: 'acknowledged' | 'resolved';
  at: Date;
  details?: Record<string, unknown>;
  /** The event written; by default `alert.acknowledged` or `alert.resolved`. */
  event?: AlertEventType;
}

const returningByConnection = new WeakMap<DataSource, string>();

/**
 * The alert as the entity reads it, from its own columns (each column's driver type is
 * the property's: no conversion needed), so a change needs no read after it. Built once
 * per connection from the entity's metadata.
 */
function alertColumns(connection: DataSource): string {
  let returning = returningByConnection.get(connection);
  if (returning === undefined) {
    returning = connection
      .getMetadata(AlertEntity)
      .columns.map((c) => `${c.databaseName} AS "${c.propertyName}"`)
      .join(', ');
    returningByConnection.set(connection, returning);
  }
  return returning;
}

/**
 * Moves an alert between states once, and writes its outbox event when it moved: the
 * WHERE makes a repeated or racing change a no-op (null). `projectId` scopes it when
 * given (the api's changes); the evaluator's changes are keyed by the alert alone.
 */
export async function transitionAlert(
  em: EntityManager,
  events: AlertEventsRepository,
  alertId: string,
  change: AlertChange,
  projectId?: string,
): Promise<AlertEntity | null> {
  const column = change.to === 'acknowledged' ? 'acknowledged_at' : 'resolved_at';
  const returning = alertColumns(em.connection);
  const [rows] = (await em.query(
    `UPDATE alerts SET status = $3, ${column} = $4, details = details || $5::jsonb
      WHERE id = $1 AND status = ANY ($2::text[]) AND ($6::uuid IS NULL OR project_id = $6)
      RETURNING ${returning}`,
    [
      alertId,
      change.from,
      change.to,
      change.at.toISOString(),
      JSON.stringify(change.details ?? {}),
      projectId ?? null,
    ],
  )) as [AlertEntity[], number];
  if (rows.length === 0) return null;
  const alert = Object.assign(new AlertEntity(), rows[0]);
  await events.record(
    em,
    alert,
    change.event ?? (change.to === 'acknowledged' ? 'alert.acknowledged' : 'alert.resolved'),
  );
  return alert;
}
