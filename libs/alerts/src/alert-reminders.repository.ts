import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { AlertEventsRepository } from './alert-events.repository';
import { AlertEntity } from './entities/alert.entity';

/** An alert as reminders see it: the interval is the rule's as it was when the alert opened. */
export interface ReminderState {
  alertId: string;
  projectId: string;
  status: 'open' | 'acknowledged' | 'resolved';
  createdAt: Date;
  intervalSeconds: number | null;
  remindersSent: number;
}

const COLUMNS = `a.id AS "alertId", a.project_id AS "projectId", a.status,
  a.created_at AS "createdAt", a.reminders_sent AS "remindersSent",
  (a.details -> 'rule' ->> 'reminder_interval_seconds')::int AS "intervalSeconds"`;

/** Reminder bookkeeping on `alerts`, and the `alert.reminder` outbox event (worker only). */
@Injectable()
export class AlertRemindersRepository {
  constructor(private readonly events: AlertEventsRepository) {}

  /** The alert an `alert.created` or `device.offline` event opened; null for any other event. */
  async openedBy(em: EntityManager, eventId: string): Promise<ReminderState | null> {
    const [row] = (await em.query(
      `SELECT ${COLUMNS} FROM alert_events e JOIN alerts a ON a.id = e.alert_id
        WHERE e.id = $1 AND e.type IN ('alert.created', 'device.offline')`,
      [eventId],
    )) as ReminderState[];
    return row ?? null;
  }

  /** The alert, locked for the transaction; null when it does not exist. */
  async lock(em: EntityManager, alertId: string): Promise<ReminderState | null> {
    const [row] = (await em.query(`SELECT ${COLUMNS} FROM alerts a WHERE a.id = $1 FOR UPDATE`, [
      alertId,
    ])) as ReminderState[];
    return row ?? null;
  }

  /**
   * Open alerts whose next reminder is overdue by more than `graceMs` (its job should have
   * run by then), oldest first; reads `alerts_reminding_idx`.
   */
  async overdue(em: EntityManager, graceMs: number, limit: number): Promise<ReminderState[]> {
    return (await em.query(
      `SELECT ${COLUMNS} FROM alerts a
        WHERE a.status = 'open' AND (a.details -> 'rule' ->> 'reminder_interval_seconds') IS NOT NULL
          AND a.created_at + (a.reminders_sent + 1)
                * make_interval(secs => (a.details -> 'rule' ->> 'reminder_interval_seconds')::int)
              < now() - make_interval(secs => $1::float8 / 1000)
        ORDER BY a.created_at LIMIT $2`,
      [graceMs, limit],
    )) as ReminderState[];
  }

  /** Reminder `n` happened: counted on the alert, its event in the outbox. */
  async record(em: EntityManager, alertId: string, n: number): Promise<void> {
    const repo = em.getRepository(AlertEntity);
    await repo.update({ id: alertId }, { remindersSent: n });
    const alert = await repo.findOneByOrFail({ id: alertId });
    await this.events.record(em, alert, 'alert.reminder');
  }
}
