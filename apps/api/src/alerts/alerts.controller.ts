import {
  AlertResponse,
  AlertsService,
  ListAlertsQueryDto,
  ListProjectAlertsQueryDto,
} from '@app/alerts';
import { PageOf, ProjectId } from '@app/common';
import { TenancyService } from '@app/tenancy';
import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

const AlertPage = PageOf(AlertResponse, 'AlertPage');

@ApiTags('alerts')
@Controller()
export class AlertsController {
  constructor(
    private readonly alerts: AlertsService,
    private readonly tenancy: TenancyService,
  ) {}

  @Get('projects/:project_id/alerts')
  @RequireScope('read')
  @ApiOperation({
    summary: "The project's alerts, newest first (every status unless status is given)",
  })
  @ApiOkResponse({ type: AlertPage })
  @ApiErrors(404, 422)
  listProject(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() q: ListProjectAlertsQueryDto,
  ) {
    return this.alerts.list(
      projectId,
      { status: q.status, ruleId: q.rule_id, deviceId: q.device_id, from: q.from, to: q.to },
      q.limit,
      q.cursor,
    );
  }

  @Get('devices/:device_id/alerts')
  @RequireScope('read')
  @ApiOperation({ summary: "A device's alerts, newest first" })
  @ApiOkResponse({ type: AlertPage })
  @ApiErrors(404, 422)
  async listDevice(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Query() q: ListAlertsQueryDto,
  ) {
    await this.tenancy.getDevice(projectId, deviceId);
    return this.alerts.list(
      projectId,
      { status: q.status, ruleId: q.rule_id, deviceId, from: q.from, to: q.to },
      q.limit,
      q.cursor,
    );
  }

  @Get('alerts/:alert_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get an alert' })
  @ApiOkResponse({ type: AlertResponse })
  @ApiErrors(404)
  get(
    @CurrentProject() projectId: ProjectId,
    @Param('alert_id', new UuidParam('alert')) alertId: string,
  ): Promise<AlertResponse> {
    return this.alerts.get(projectId, alertId);
  }

  @Post('alerts/:alert_id/ack')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Acknowledge an open alert (again: no-op)' })
  @ApiOkResponse({ type: AlertResponse })
  @ApiErrors(404, { 409: 'the alert is resolved' })
  ack(
    @CurrentProject() projectId: ProjectId,
    @Param('alert_id', new UuidParam('alert')) alertId: string,
  ): Promise<AlertResponse> {
    return this.alerts.acknowledge(projectId, alertId);
  }

  @Post('alerts/:alert_id/resolve')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Resolve an open or acknowledged alert now (again: no-op)' })
  @ApiOkResponse({ type: AlertResponse })
  @ApiErrors(404)
  resolve(
    @CurrentProject() projectId: ProjectId,
    @Param('alert_id', new UuidParam('alert')) alertId: string,
  ): Promise<AlertResponse> {
    return this.alerts.resolve(projectId, alertId);
  }
}
