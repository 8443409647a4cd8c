import { AlertEventsRepository } from '@app/alerts';
import { AppConfig } from '@app/config';
import {
  AppError,
  createdCursor,
  isoOrNull,
  NotFoundError,
  Page,
  ProjectId,
  toPage,
  validationFailed,
} from '@app/common';
import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { CircuitBreakerService } from './circuit-breaker.service';
import { DeliveryQueue } from './delivery-queue';
import {
  AttemptResponse,
  CircuitStatusResponse,
  CreateWebhookDto,
  DeliveryResponse,
  SecretRotatedResponse,
  UpdateWebhookDto,
  WebhookCreatedResponse,
  WebhookResponse,
} from './dto/webhooks.dto';
import { DEFAULT_EVENT_TYPES, WebhookEntity } from './entities/webhook.entity';
import { generateSecret } from './signature';
import { refusalWithoutLookup } from './ssrf';
import { WebhookSecretCodec } from './webhook-secrets';
import { toAttemptResponse, toDeliveryResponse, toWebhookResponse } from './webhooks.mappers';
import { DeliveryFilter, WebhooksRepository } from './webhooks.repository';

const DEFAULT_PREVIOUS_SECRET_TTL_SECONDS = 86400;
const TEST_MESSAGE =
  'A test event sent by POST /webhooks/{webhook_id}/test; no alert is behind it.';

/** Webhook subscriptions and their deliveries, through the API. */
@Injectable()
export class WebhooksService {
  private readonly logger = new Logger(WebhooksService.name);
  private readonly allowPrivateNetworks: boolean;
  private readonly webhookQuota: number;

  constructor(
    private readonly repo: WebhooksRepository,
    private readonly breaker: CircuitBreakerService,
    private readonly deliveryQueue: DeliveryQueue,
    private readonly secrets: WebhookSecretCodec,
    private readonly events: AlertEventsRepository,
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ConfigService<AppConfig, true>,
  ) {
    this.allowPrivateNetworks = config.get('webhooks', { infer: true }).allowPrivateNetworks;
    this.webhookQuota = config.get('quotas', { infer: true }).webhooksPerProject;
  }

  async create(projectId: ProjectId, dto: CreateWebhookDto): Promise<WebhookCreatedResponse> {
    const url = this.checkUrl(dto.url);
    const secret = generateSecret();
    // The id is chosen here: it is the sealed secret's associated data.
    const id = randomUUID();
    const webhook = await this.repo.create(
      projectId,
      {
        id,
        url,
        description: dto.description ?? null,
        eventTypes: dto.event_types ?? [...DEFAULT_EVENT_TYPES],
        enabled: dto.enabled ?? true,
        disabledReason: dto.enabled === false ? 'disabled when created' : null,
        secret: this.secrets.seal(id, secret),
        previousSecret: null,
        previousSecretExpiresAt: null,
        updatedAt: new Date(),
      },
      this.webhookQuota,
    );
    return { ...toWebhookResponse(webhook), secret };
  }

  async list(projectId: ProjectId, limit = 100, cursor?: string): Promise<Page<WebhookResponse>> {
    return toPage(
      await this.repo.list(projectId, limit, cursor),
      limit,
      (w) => toWebhookResponse(w),
      createdCursor,
    );
  }

  async get(projectId: ProjectId, webhookId: string): Promise<WebhookResponse> {
    return toWebhookResponse(await this.find(projectId, webhookId));
  }

  async update(
    projectId: ProjectId,
    webhookId: string,
    dto: UpdateWebhookDto,
  ): Promise<WebhookResponse> {
    const values: Partial<WebhookEntity> = {};
    if (dto.url !== undefined) values.url = this.checkUrl(dto.url);
    if (dto.description !== undefined) values.description = dto.description;
    if (dto.event_types !== undefined) values.eventTypes = dto.event_types;
    if (dto.enabled !== undefined) {
      values.enabled = dto.enabled;
      values.disabledReason = dto.enabled ? null : 'disabled by a user';
    }
    return this.change(projectId, webhookId, values);
  }

  setEnabled(projectId: ProjectId, webhookId: string, enabled: boolean): Promise<WebhookResponse> {
    return this.change(projectId, webhookId, {
      enabled,
      disabledReason: enabled ? null : 'disabled by a user',
    });
  }

  /** Deliveries go with it (ON DELETE CASCADE); a job still queued finds nothing and ends. */
  async delete(projectId: ProjectId, webhookId: string): Promise<void> {
    if (!(await this.repo.delete(projectId, webhookId))) throw new NotFoundError('webhook');
  }

  /**
   * A new secret signs from now on; the old one keeps signing beside it (two signatures in
   * `webhook-signature`) for `ttlSeconds`, so subscribers can switch without dropping any.
   */
  async rotateSecret(
    projectId: ProjectId,
    webhookId: string,
    ttlSeconds = DEFAULT_PREVIOUS_SECRET_TTL_SECONDS,
  ): Promise<SecretRotatedResponse> {
    const current = await this.find(projectId, webhookId);
    const secret = generateSecret();
    const expires = ttlSeconds > 0 ? new Date(Date.now() + ttlSeconds * 1000) : null;
    await this.repo.update(projectId, webhookId, {
      secret: this.secrets.seal(webhookId, secret),
      previousSecret: expires ? this.secrets.reseal(webhookId, current.secret) : null,
      previousSecretExpiresAt: expires,
    });
    return {
      id: webhookId,
      secret,
      previous_secret_expires_at: isoOrNull(expires),
    };
  }

  async circuitStatus(projectId: ProjectId, webhookId: string): Promise<CircuitStatusResponse> {
    const webhook = await this.find(projectId, webhookId);
    try {
      return await this.breaker.status({ projectId, url: webhook.url });
    } catch (err) {
      // The circuit lives in Redis: unreachable, it is a dependency down, not our bug.
      this.logger.warn({ err: (err as Error).message }, 'circuit status unavailable');
      throw new AppError(
        'unavailable',
        'circuit state is unavailable (Redis); retry shortly',
        undefined,
        5,
      );
    }
  }

  async listDeliveries(
    projectId: ProjectId,
    filter: DeliveryFilter,
    limit = 100,
    cursor?: string,
  ): Promise<Page<DeliveryResponse>> {
    return toPage(
      await this.repo.listDeliveries(projectId, filter, limit, cursor),
      limit,
      toDeliveryResponse,
      createdCursor,
    );
  }

  async getDelivery(projectId: ProjectId, deliveryId: string): Promise<DeliveryResponse> {
    const delivery = await this.repo.findDelivery(projectId, deliveryId);
    if (!delivery) throw new NotFoundError('delivery');
    return toDeliveryResponse(delivery);
  }

  async listAttempts(
    projectId: ProjectId,
    deliveryId: string,
    limit = 100,
    cursor?: string,
  ): Promise<Page<AttemptResponse>> {
    if (!(await this.repo.findDelivery(projectId, deliveryId))) throw new NotFoundError('delivery');
    return toPage(
      await this.repo.listAttempts(projectId, deliveryId, limit, cursor),
      limit,
      toAttemptResponse,
      (a) => [a.attempt],
    );
  }

  /**
   * Sends a delivery again now, whatever its status, with a fresh backoff schedule (same
   * `webhook-id`, so a subscriber that already has it can tell). 409 while its webhook is
   * disabled: it would only fail again.
   */
  async retryDelivery(projectId: ProjectId, deliveryId: string): Promise<DeliveryResponse> {
    const delivery = await this.repo.findDelivery(projectId, deliveryId);
    if (!delivery) throw new NotFoundError('delivery');
    const webhook = await this.find(projectId, delivery.webhookId);
    if (!webhook.enabled)
      throw new AppError('conflict', 'the webhook is disabled; enable it before retrying');
    await this.repo.scheduleRetry(projectId, deliveryId);
    // The retry is recorded in PostgreSQL: if Redis is away now, the worker's sweeper
    // enqueues it within a minute, so the request still succeeds.
    await this.deliveryQueue
      .runNow(projectId, deliveryId)
      .catch((err: Error) =>
        this.logger.warn({ err: err.message, deliveryId }, 'retry not enqueued; the sweeper will'),
      );
    return this.getDelivery(projectId, deliveryId);
  }

  /**
   * A signed `webhook.test` event to this webhook only, through the ordinary delivery path
   * (a delivery row, its job, the circuit breaker, the attempts recorded), whatever event
   * types it takes. The event and its one delivery are written in one transaction, the
   * event already dispatched, so the fan-out never offers it to another webhook. 409 while
   * the webhook is disabled, as for a retry. Like a retry, it is accepted once it is in
   * PostgreSQL: if Redis is away, the worker's sweeper sends it within about 90 s.
   */
  async sendTest(projectId: ProjectId, webhookId: string): Promise<DeliveryResponse> {
    const webhook = await this.find(projectId, webhookId);
    const disabled = () =>
      new AppError('conflict', 'the webhook is disabled; enable it before sending a test');
    if (!webhook.enabled) throw disabled();
    const deliveryId = await this.dataSource.transaction(async (em) => {
      const event = await this.events.recordTest(em, projectId, {
        webhook_id: webhookId,
        message: TEST_MESSAGE,
      });
      const id = await this.repo.createTestDelivery(em, projectId, webhookId, event);
      // Disabled (or deleted) since it was read: nothing is kept, the event included.
      if (!id) throw disabled();
      return id;
    });
    await this.deliveryQueue
      .enqueue([{ projectId, deliveryId }])
      .catch((err: Error) =>
        this.logger.warn({ err: err.message, deliveryId }, 'test not enqueued; the sweeper will'),
      );
    return this.getDelivery(projectId, deliveryId);
  }

  private async find(projectId: ProjectId, webhookId: string): Promise<WebhookEntity> {
    const webhook = await this.repo.find(projectId, webhookId);
    if (!webhook) throw new NotFoundError('webhook');
    return webhook;
  }

  private async change(
    projectId: ProjectId,
    webhookId: string,
    values: Partial<WebhookEntity>,
  ): Promise<WebhookResponse> {
    const webhook =
      Object.keys(values).length > 0
        ? await this.repo.update(projectId, webhookId, values)
        : await this.repo.find(projectId, webhookId);
    if (!webhook) throw new NotFoundError('webhook');
    return toWebhookResponse(webhook);
  }

  /** Refused at once when it can be told without DNS; names are checked at every connection. */
  private checkUrl(url: string): string {
    const refusal = refusalWithoutLookup(url, this.allowPrivateNetworks);
    if (refusal) throw validationFailed([{ field: 'url', message: refusal }]);
    return new URL(url).toString();
  }
}
