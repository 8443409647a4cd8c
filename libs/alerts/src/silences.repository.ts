import { ProjectId } from '@app/common';
import { pageByCreated } from '@app/database';
import { DeviceProgressRepository } from '@app/tenancy';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { SilenceEntity, SilenceState } from './entities/silence.entity';

/** What a silence is matched against: an alert's rule and device, the device's tags now. */
export interface SilenceTarget {
  projectId: string;
  ruleId: string;
  deviceId: string;
}

/** An active alert with a muted event waiting, as the release duty takes it. */
export interface PendingNotification extends SilenceTarget {
  alertId: string;
  status: 'open' | 'acknowledged' | 'resolved';
}

/**
 * Silences (`silences`) and what they do to the outbox: the api's CRUD (project first),
 * the fan-out's question "is this event muted?", and the release duty's hand-back of one
 * muted event per alert once nothing covers it any more.
 */
@Injectable()
export class SilencesRepository {
  constructor(
    @InjectRepository(SilenceEntity) private readonly silences: Repository<SilenceEntity>,
    private readonly devices: DeviceProgressRepository,
  ) {}

  create(
    projectId: ProjectId,
    values: Omit<SilenceEntity, 'id' | 'projectId' | 'createdAt'>,
  ): Promise<SilenceEntity> {
    return this.silences.save(this.silences.create({ projectId, ...values }));
  }

  find(projectId: ProjectId, silenceId: string): Promise<SilenceEntity | null> {
    return this.silences.findOneBy({ projectId, id: silenceId });
  }

  /** Oldest first; `state` as of the database's now. */
  list(
    projectId: ProjectId,
    state: SilenceState | undefined,
    limit: number,
    cursor?: string,
  ): Promise<SilenceEntity[]> {
    const qb = this.silences
      .createQueryBuilder('s')
      .where('s.project_id = :projectId', { projectId });
    if (state === 'active') qb.andWhere('s.starts_at <= now() AND s.ends_at > now()');
    if (state === 'pending') qb.andWhere('s.starts_at > now()');
    if (state === 'expired') qb.andWhere('s.ends_at <= now()');
    return pageByCreated(qb, limit, cursor);
  }

  /**
   * Ends the silence now (one not yet started ends before it starts: its period becomes
   * the instant it was expired). Null when it does not exist; an expired one is left as
   * it was.
   */
  async expire(projectId: ProjectId, silenceId: string): Promise<SilenceEntity | null> {
    await this.silences.query(
      `UPDATE silences
          SET ends_at = now(), starts_at = LEAST(starts_at, now() - interval '1 millisecond')
        WHERE project_id = $1 AND id = $2 AND ends_at > now()`,
      [projectId, silenceId],
    );
    return this.find(projectId, silenceId);
  }

  /**
   * The silence, of those covering `target` at `at`, that ends last (the lowest id of those
   * ending together); null when none does.
   * A silence covers an alert when every matcher it has matches: the rule, the device, a
   * tag the device has now.
   */
  async covering(em: EntityManager, target: SilenceTarget, at: Date): Promise<string | null> {
    // The tag matcher last, and the device's tags read only when a candidate has one: every
    // alert event asks, and most projects have no silence on at the time.
    const candidates = (await em.query(
      `SELECT id, tag FROM silences
        WHERE project_id = $1 AND starts_at <= $4 AND ends_at > $4
          AND (rule_id IS NULL OR rule_id = $2)
          AND (device_id IS NULL OR device_id = $3)
        ORDER BY ends_at DESC, id`,
      [target.projectId, target.ruleId, target.deviceId, at],
    )) as Array<{ id: string; tag: string | null }>;
    let tags: string[] | undefined;
    for (const c of candidates) {
      if (c.tag === null) return c.id;
      tags ??= (await this.devices.evaluationCursor(em, target.deviceId))?.tags ?? [];
      if (tags.includes(c.tag)) return c.id;
    }
    return null;
  }

  /**
   * For each event (of an alert, at a time), the silence muting it: the one covering its
   * alert then that ends last ({@link covering}); null where none does. One query for
   * every event, the device's tags read only for a candidate with a tag matcher.
   */
  async mutingSilences(
    em: EntityManager,
    events: Array<{ alertId: string; at: Date }>,
  ): Promise<Array<string | null>> {
    const muting: Array<string | null> = events.map(() => null);
    if (events.length === 0) return muting;
    const candidates = (await em.query(
      `SELECT x.n::int AS n, s.id, s.tag, a.device_id AS "deviceId"
         FROM unnest($1::uuid[], $2::timestamptz[]) WITH ORDINALITY AS x(alert_id, at, n)
         JOIN alerts a ON a.id = x.alert_id
         JOIN silences s ON s.project_id = a.project_id AND s.starts_at <= x.at AND s.ends_at > x.at
          AND (s.rule_id IS NULL OR s.rule_id = a.rule_id)
          AND (s.device_id IS NULL OR s.device_id = a.device_id)
        ORDER BY x.n, s.ends_at DESC, s.id`,
      [events.map((e) => e.alertId), events.map((e) => e.at)],
    )) as Array<{ n: number; id: string; tag: string | null; deviceId: string }>;
    const tags = new Map<string, string[]>();
    for (const c of candidates) {
      const i = c.n - 1;
      if (muting[i] !== null) continue;
      if (c.tag !== null) {
        if (!tags.has(c.deviceId))
          tags.set(c.deviceId, (await this.devices.evaluationCursor(em, c.deviceId))?.tags ?? []);
        if (!tags.get(c.deviceId)!.includes(c.tag)) continue;
      }
      muting[i] = c.id;
    }
    return muting;
  }

  /**
   * The event was muted by `silenceId`: dispatched with no deliveries, and its alert marked
   * (still active: its latest state is owed to the webhooks once no silence covers it).
   */
  async mute(
    em: EntityManager,
    eventId: string,
    alertId: string,
    silenceId: string,
  ): Promise<void> {
    await em.query(
      `UPDATE alert_events SET dispatched_at = now(), silenced_by = $2 WHERE id = $1`,
      [eventId, silenceId],
    );
    await em.query(
      `UPDATE alerts SET silenced_by = $2, notify_pending = status IN ('open', 'acknowledged')
        WHERE id = $1`,
      [alertId, silenceId],
    );
  }

  /**
   * Up to `limit` alerts owed a notification, by id after `afterId`, locked for the
   * transaction (rows another worker holds are skipped).
   */
  async takePending(
    em: EntityManager,
    afterId: string | null,
    limit: number,
  ): Promise<PendingNotification[]> {
    return (await em.query(
      `SELECT id AS "alertId", project_id AS "projectId", rule_id AS "ruleId",
              device_id AS "deviceId", status
         FROM alerts WHERE notify_pending AND id > COALESCE($1::uuid, '00000000-0000-0000-0000-000000000000')
        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [afterId, limit],
    )) as PendingNotification[];
  }

  /**
   * Hands the alert's latest muted event to the outbox again (the relay takes it, the
   * fan-out sends it without asking about silences) and clears the debt. Returns the event
   * id, null when it had none.
   */
  async release(em: EntityManager, alertId: string): Promise<string | null> {
    const [row] = (await em.query(
      `UPDATE alert_events SET dispatched_at = NULL, relayed_at = NULL, unmuted_at = now()
        WHERE id = (SELECT id FROM alert_events
                     WHERE alert_id = $1 AND silenced_by IS NOT NULL AND unmuted_at IS NULL
                     ORDER BY created_at DESC, id DESC LIMIT 1)
        RETURNING id`,
      [alertId],
    )) as Array<{ id: string }>;
    await this.settle(em, alertId);
    return row?.id ?? null;
  }

  /** Nothing owed any more (the alert resolved meanwhile, or its event was handed back). */
  async settle(em: EntityManager, alertId: string): Promise<void> {
    await em.query(`UPDATE alerts SET notify_pending = false WHERE id = $1`, [alertId]);
  }
}
