import { isoOrNull } from '@app/common';
import { AttemptResponse, DeliveryResponse, WebhookResponse } from './dto/webhooks.dto';
import { WebhookAttemptEntity } from './entities/webhook-attempt.entity';
import { WebhookDeliveryEntity } from './entities/webhook-delivery.entity';
import { WebhookEntity } from './entities/webhook.entity';

/** Never the secrets: they are shown once, by the create and rotate responses. */
export const toWebhookResponse = (w: WebhookEntity, now = new Date()): WebhookResponse => ({
  id: w.id,
  project_id: w.projectId,
  url: w.url,
  description: w.description,
  event_types: w.eventTypes,
  enabled: w.enabled,
  disabled_reason: w.disabledReason,
  previous_secret_expires_at:
    w.previousSecret && w.previousSecretExpiresAt && w.previousSecretExpiresAt > now
      ? w.previousSecretExpiresAt.toISOString()
      : null,
  created_at: w.createdAt.toISOString(),
  updated_at: w.updatedAt.toISOString(),
});

export const toDeliveryResponse = (d: WebhookDeliveryEntity): DeliveryResponse => ({
  id: d.id,
  project_id: d.projectId,
  webhook_id: d.webhookId,
  event_id: d.eventId,
  event_type: d.eventType,
  status: d.status,
  attempts: d.attempts,
  last_status_code: d.lastStatusCode,
  last_error: d.lastError,
  next_attempt_at: d.status === 'pending' ? isoOrNull(d.nextAttemptAt) : null,
  created_at: d.createdAt.toISOString(),
  delivered_at: isoOrNull(d.deliveredAt),
});

export const toAttemptResponse = (a: WebhookAttemptEntity): AttemptResponse => ({
  attempt: a.attempt,
  started_at: a.startedAt.toISOString(),
  duration_ms: a.durationMs,
  status_code: a.statusCode,
  error: a.error,
  response_excerpt: a.responseExcerpt,
});
