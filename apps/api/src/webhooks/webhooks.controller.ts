import { PageOf } from '@app/common';
import { ListQueryDto } from '@app/tenancy';
import {
  AttemptResponse,
  CircuitStatusResponse,
  CreateWebhookDto,
  DeliveryResponse,
  ListDeliveriesQueryDto,
  RotateSecretDto,
  SecretRotatedResponse,
  UpdateWebhookDto,
  WebhookCreatedResponse,
  WebhookResponse,
  WebhooksService,
} from '@app/webhooks';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ErrorResponse } from '../http/error-response.dto';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('webhooks')
@Controller()
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post('projects/:project_id/webhooks')
  @HttpCode(201)
  @RequireScope('manage')
  @ApiOperation({
    summary:
      'Subscribe an endpoint to alert events; the signing secret (whsec_…) is shown only in this response',
  })
  @ApiCreatedResponse({ type: WebhookCreatedResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: string,
    @Body() dto: CreateWebhookDto,
  ): Promise<WebhookCreatedResponse> {
    return this.webhooks.create(projectId, dto);
  }

  @Get('projects/:project_id/webhooks')
  @RequireScope('read')
  @ApiOperation({ summary: "List the project's webhooks, oldest first (no secrets)" })
  @ApiOkResponse({ type: PageOf(WebhookResponse, 'WebhookPage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: string,
    @Query() q: ListQueryDto,
  ) {
    return this.webhooks.list(projectId, q.limit, q.cursor);
  }

  @Get('webhooks/:webhook_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a webhook (no secret)' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  get(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<WebhookResponse> {
    return this.webhooks.get(projectId, webhookId);
  }

  @Patch('webhooks/:webhook_id')
  @RequireScope('manage')
  @ApiOperation({ summary: 'Change a webhook; applies to deliveries from their next attempt' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  update(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
    @Body() dto: UpdateWebhookDto,
  ): Promise<WebhookResponse> {
    return this.webhooks.update(projectId, webhookId, dto);
  }

  @Delete('webhooks/:webhook_id')
  @HttpCode(204)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Delete a webhook and its delivery history' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ErrorResponse })
  async delete(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<void> {
    await this.webhooks.delete(projectId, webhookId);
  }

  @Post('webhooks/:webhook_id/disable')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({
    summary:
      'Stop delivering to a webhook: no new deliveries; pending ones fail when due unless it is enabled again first',
  })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  disable(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<WebhookResponse> {
    return this.webhooks.setEnabled(projectId, webhookId, false);
  }

  @Post('webhooks/:webhook_id/enable')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Deliver to a webhook again (also after a 410 disabled it)' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  enable(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<WebhookResponse> {
    return this.webhooks.setEnabled(projectId, webhookId, true);
  }

  @Post('webhooks/:webhook_id/rotate-secret')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({
    summary:
      'New signing secret (shown only here); the old one keeps signing beside it until previous_secret_expires_at',
  })
  @ApiOkResponse({ type: SecretRotatedResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  rotateSecret(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
    @Body() dto: RotateSecretDto,
  ): Promise<SecretRotatedResponse> {
    return this.webhooks.rotateSecret(projectId, webhookId, dto.previous_secret_ttl_seconds);
  }

  @Get('webhooks/:webhook_id/circuit-status')
  @RequireScope('read')
  @ApiOperation({
    summary: "The circuit breaker of the webhook's endpoint URL (shared by every worker)",
  })
  @ApiOkResponse({ type: CircuitStatusResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  circuitStatus(
    @CurrentProject() projectId: string,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<CircuitStatusResponse> {
    return this.webhooks.circuitStatus(projectId, webhookId);
  }

  @Get('projects/:project_id/webhook-deliveries')
  @RequireScope('read')
  @ApiOperation({ summary: "The project's webhook deliveries, newest first" })
  @ApiOkResponse({ type: PageOf(DeliveryResponse, 'DeliveryPage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  listDeliveries(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: string,
    @Query() q: ListDeliveriesQueryDto,
  ) {
    return this.webhooks.listDeliveries(
      projectId,
      { webhookId: q.webhook_id, status: q.status, eventId: q.event_id },
      q.limit,
      q.cursor,
    );
  }

  @Get('webhook-deliveries/:delivery_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a delivery' })
  @ApiOkResponse({ type: DeliveryResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  getDelivery(
    @CurrentProject() projectId: string,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
  ): Promise<DeliveryResponse> {
    return this.webhooks.getDelivery(projectId, deliveryId);
  }

  @Get('webhook-deliveries/:delivery_id/attempts')
  @RequireScope('read')
  @ApiOperation({
    summary: "A delivery's attempts, oldest first: status code, duration, error, response excerpt",
  })
  @ApiOkResponse({ type: PageOf(AttemptResponse, 'AttemptPage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  listAttempts(
    @CurrentProject() projectId: string,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
    @Query() q: ListQueryDto,
  ) {
    return this.webhooks.listAttempts(projectId, deliveryId, q.limit, q.cursor);
  }

  @Post('webhook-deliveries/:delivery_id/retry')
  @HttpCode(202)
  @RequireScope('manage')
  @ApiOperation({
    summary: 'Send a delivery again now (any status), same webhook-id, with a fresh retry schedule',
  })
  @ApiAcceptedResponse({ type: DeliveryResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiConflictResponse({ type: ErrorResponse, description: 'the webhook is disabled' })
  retry(
    @CurrentProject() projectId: string,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
  ): Promise<DeliveryResponse> {
    return this.webhooks.retryDelivery(projectId, deliveryId);
  }
}
