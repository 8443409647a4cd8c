import { decodeCursor, ProjectId, validationFailed } from '@app/common';
import { keysetPage, pageByCreated, saveUnderQuota } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { WebhookAttemptEntity } from './entities/webhook-attempt.entity';
import { DeliveryStatus, WebhookDeliveryEntity } from './entities/webhook-delivery.entity';
import { WebhookEntity } from './entities/webhook.entity';

export interface DeliveryFilter {
  webhookId?: string;
  status?: DeliveryStatus;
  eventId?: string;
}

/**
 * Subscriptions, deliveries and attempts as the api sees them; every method takes the
 * tenant (project) first. The worker's side is DeliveryLedgerRepository.
 */
@Injectable()
export class WebhooksRepository {
  constructor(
    @InjectRepository(WebhookEntity) private readonly webhooks: Repository<WebhookEntity>,
    @InjectRepository(WebhookDeliveryEntity)
    private readonly deliveries: Repository<WebhookDeliveryEntity>,
    @InjectRepository(WebhookAttemptEntity)
    private readonly attempts: Repository<WebhookAttemptEntity>,
  ) {}

  /** Creates a subscription; 422 past the project's webhook quota. */
  create(
    projectId: ProjectId,
    values: Partial<WebhookEntity>,
    quota: number,
  ): Promise<WebhookEntity> {
    return saveUnderQuota(
      this.webhooks,
      { what: 'webhooks', projectId, limit: quota },
      { ...values, projectId },
    );
  }

  find(projectId: ProjectId, webhookId: string): Promise<WebhookEntity | null> {
    return this.webhooks.findOneBy({ projectId, id: webhookId });
  }

  list(projectId: ProjectId, limit: number, cursor?: string): Promise<WebhookEntity[]> {
    return pageByCreated(
      this.webhooks.createQueryBuilder('w').where('w.project_id = :projectId', { projectId }),
      limit,
      cursor,
    );
  }

  /** Changes the columns given and bumps `updated_at`; null when the webhook is not the project's. */
  async update(
    projectId: ProjectId,
    webhookId: string,
    values: Partial<WebhookEntity>,
  ): Promise<WebhookEntity | null> {
    const result = await this.webhooks.update({ projectId, id: webhookId }, {
      ...values,
      updatedAt: () => 'now()',
    } as Parameters<Repository<WebhookEntity>['update']>[1]);
    if (!result.affected) return null;
    return this.find(projectId, webhookId);
  }

  async delete(projectId: ProjectId, webhookId: string): Promise<boolean> {
    const result = await this.webhooks.delete({ projectId, id: webhookId });
    return (result.affected ?? 0) > 0;
  }

  findDelivery(projectId: ProjectId, deliveryId: string): Promise<WebhookDeliveryEntity | null> {
    return this.deliveries.findOneBy({ projectId, id: deliveryId });
  }

  /** Newest first by (created_at, id). */
  listDeliveries(
    projectId: ProjectId,
    filter: DeliveryFilter,
    limit: number,
    cursor?: string,
  ): Promise<WebhookDeliveryEntity[]> {
    const qb = this.deliveries
      .createQueryBuilder('d')
      .where('d.project_id = :projectId', { projectId });
    if (filter.webhookId) qb.andWhere('d.webhook_id = :webhookId', { webhookId: filter.webhookId });
    if (filter.status) qb.andWhere('d.status = :status', { status: filter.status });
    if (filter.eventId) qb.andWhere('d.event_id = :eventId', { eventId: filter.eventId });
    return keysetPage(qb, { column: 'created_at', order: 'DESC' }, limit, cursor);
  }

  /** Oldest first by attempt number; the cursor is the last attempt number. */
  async listAttempts(
    projectId: ProjectId,
    deliveryId: string,
    limit: number,
    cursor?: string,
  ): Promise<WebhookAttemptEntity[]> {
    let after = 0;
    if (cursor) {
      const [n] = decodeCursor(cursor, 1);
      // An attempt number is an int4 column: anything past it is a forged cursor.
      if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > 2147483647)
        throw validationFailed([{ field: 'cursor', message: 'cursor is malformed' }]);
      after = n as number;
    }
    return this.attempts
      .createQueryBuilder('a')
      .innerJoin(WebhookDeliveryEntity, 'd', 'd.id = a.delivery_id')
      .where('d.project_id = :projectId AND a.delivery_id = :deliveryId', {
        projectId,
        deliveryId,
      })
      .andWhere('a.attempt > :after', { after })
      .orderBy('a.attempt', 'ASC')
      .limit(limit + 1)
      .getMany();
  }

  /**
   * In the caller's transaction: the one delivery of a `webhook.test` event, to the webhook
   * asked for, due now. Its id; null when the webhook is not the project's or is disabled
   * (checked in the insert, so a webhook disabled meanwhile gets no delivery).
   */
  async createTestDelivery(
    em: EntityManager,
    projectId: ProjectId,
    webhookId: string,
    event: { id: string; type: string },
  ): Promise<string | null> {
    const [row] = (await em.query(
      `INSERT INTO webhook_deliveries
              (project_id, webhook_id, event_id, event_type, status, next_attempt_at)
       SELECT w.project_id, w.id, $3, $4, 'pending', now()
         FROM webhooks w
        WHERE w.project_id = $1 AND w.id = $2 AND w.enabled
       RETURNING id`,
      [projectId, webhookId, event.id, event.type],
    )) as Array<{ id: string }>;
    return row?.id ?? null;
  }

  /**
   * A manual retry: the delivery is due now and its backoff schedule starts over. Returns
   * false when the delivery is not the project's.
   */
  async scheduleRetry(projectId: ProjectId, deliveryId: string): Promise<boolean> {
    const [, count] = (await this.deliveries.query(
      `UPDATE webhook_deliveries
          SET status = 'pending', next_attempt_at = now(), schedule_offset = attempts,
              delivered_at = NULL, updated_at = now()
        WHERE project_id = $1 AND id = $2`,
      [projectId, deliveryId],
    )) as [unknown, number];
    return count > 0;
  }
}
