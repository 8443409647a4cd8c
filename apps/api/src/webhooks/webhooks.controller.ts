import { ListQueryDto, PageOf, ProjectId } from '@app/common';
import {
  CircuitStatusResponse,
  CreateWebhookDto,
  DeliveryResponse,
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
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

/** A project's webhook subscriptions: their endpoints, signing secrets and circuit breakers. */
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
  @ApiErrors(404, 422)
  create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Body() dto: CreateWebhookDto,
  ): Promise<WebhookCreatedResponse> {
    return this.webhooks.create(projectId, dto);
  }

  @Get('projects/:project_id/webhooks')
  @RequireScope('read')
  @ApiOperation({ summary: "List the project's webhooks, oldest first (no secrets)" })
  @ApiOkResponse({ type: PageOf(WebhookResponse, 'WebhookPage') })
  @ApiErrors(404)
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() q: ListQueryDto,
  ) {
    return this.webhooks.list(projectId, q.limit, q.cursor);
  }

  @Get('webhooks/:webhook_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a webhook (no secret)' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiErrors(404)
  get(
    @CurrentProject() projectId: ProjectId,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<WebhookResponse> {
    return this.webhooks.get(projectId, webhookId);
  }

  @Patch('webhooks/:webhook_id')
  @RequireScope('manage')
  @ApiOperation({ summary: 'Change a webhook; applies to deliveries from their next attempt' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiErrors(404, 422)
  update(
    @CurrentProject() projectId: ProjectId,
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
  @ApiErrors(404)
  async delete(
    @CurrentProject() projectId: ProjectId,
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
  @ApiErrors(404)
  disable(
    @CurrentProject() projectId: ProjectId,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<WebhookResponse> {
    return this.webhooks.setEnabled(projectId, webhookId, false);
  }

  @Post('webhooks/:webhook_id/enable')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Deliver to a webhook again (also after a 410 disabled it)' })
  @ApiOkResponse({ type: WebhookResponse })
  @ApiErrors(404)
  enable(
    @CurrentProject() projectId: ProjectId,
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
  @ApiErrors(404, 422)
  rotateSecret(
    @CurrentProject() projectId: ProjectId,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
    @Body() dto: RotateSecretDto,
  ): Promise<SecretRotatedResponse> {
    return this.webhooks.rotateSecret(projectId, webhookId, dto.previous_secret_ttl_seconds);
  }

  @Post('webhooks/:webhook_id/test')
  @HttpCode(202)
  @RequireScope('manage')
  @ApiOperation({
    summary:
      'Send a signed webhook.test event to this webhook only (whatever its event types) through the real delivery path; 202 with the delivery',
  })
  @ApiAcceptedResponse({ type: DeliveryResponse })
  @ApiErrors(404, { 409: 'the webhook is disabled' })
  sendTest(
    @CurrentProject() projectId: ProjectId,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<DeliveryResponse> {
    return this.webhooks.sendTest(projectId, webhookId);
  }

  @Get('webhooks/:webhook_id/circuit-status')
  @RequireScope('read')
  @ApiOperation({
    summary: "The circuit breaker of the webhook's endpoint URL (shared by every worker)",
  })
  @ApiOkResponse({ type: CircuitStatusResponse })
  @ApiErrors(404)
  circuitStatus(
    @CurrentProject() projectId: ProjectId,
    @Param('webhook_id', new UuidParam('webhook')) webhookId: string,
  ): Promise<CircuitStatusResponse> {
    return this.webhooks.circuitStatus(projectId, webhookId);
  }
}
