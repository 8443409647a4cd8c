import { ListQueryDto, PageOf, ProjectId } from '@app/common';
import {
  AttemptResponse,
  DeliveryResponse,
  ListDeliveriesQueryDto,
  WebhooksService,
} from '@app/webhooks';
import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

/**
 * What became of the alert events sent to a project's webhooks: deliveries, their
 * attempts, a retry. The operation ids are those from before this was split off
 * `WebhooksController` (client generators name their methods after them).
 */
@ApiTags('webhooks')
@Controller()
export class WebhookDeliveriesController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Get('projects/:project_id/webhook-deliveries')
  @RequireScope('read')
  @ApiOperation({
    operationId: 'Webhooks_listDeliveries',
    summary: "The project's webhook deliveries, newest first",
  })
  @ApiOkResponse({ type: PageOf(DeliveryResponse, 'DeliveryPage') })
  @ApiErrors(404, 422)
  listDeliveries(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
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
  @ApiOperation({ operationId: 'Webhooks_getDelivery', summary: 'Get a delivery' })
  @ApiOkResponse({ type: DeliveryResponse })
  @ApiErrors(404)
  getDelivery(
    @CurrentProject() projectId: ProjectId,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
  ): Promise<DeliveryResponse> {
    return this.webhooks.getDelivery(projectId, deliveryId);
  }

  @Get('webhook-deliveries/:delivery_id/attempts')
  @RequireScope('read')
  @ApiOperation({
    operationId: 'Webhooks_listAttempts',
    summary: "A delivery's attempts, oldest first: status code, duration, error, response excerpt",
  })
  @ApiOkResponse({ type: PageOf(AttemptResponse, 'AttemptPage') })
  @ApiErrors(404)
  listAttempts(
    @CurrentProject() projectId: ProjectId,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
    @Query() q: ListQueryDto,
  ) {
    return this.webhooks.listAttempts(projectId, deliveryId, q.limit, q.cursor);
  }

  @Post('webhook-deliveries/:delivery_id/retry')
  @HttpCode(202)
  @RequireScope('manage')
  @ApiOperation({
    operationId: 'Webhooks_retry',
    summary: 'Send a delivery again now (any status), same webhook-id, with a fresh retry schedule',
  })
  @ApiAcceptedResponse({ type: DeliveryResponse })
  @ApiErrors(404, { 409: 'the webhook is disabled' })
  retry(
    @CurrentProject() projectId: ProjectId,
    @Param('delivery_id', new UuidParam('delivery')) deliveryId: string,
  ): Promise<DeliveryResponse> {
    return this.webhooks.retryDelivery(projectId, deliveryId);
  }
}
