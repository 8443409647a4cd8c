import { PageOf, ProjectId } from '@app/common';
import {
  CreateDeviceDto,
  DeviceResponse,
  ListDevicesQueryDto,
  TenancyService,
  UpdateDeviceDto,
} from '@app/tenancy';
import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('devices')
@Controller()
export class DevicesController {
  constructor(private readonly tenancy: TenancyService) {}

  @Post('projects/:project_id/devices')
  @HttpCode(201)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Register a device' })
  @ApiCreatedResponse({ type: DeviceResponse })
  @ApiErrors(422, { 404: 'not the API key’s project', 409: 'external_id already registered' })
  create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Body() dto: CreateDeviceDto,
  ): Promise<DeviceResponse> {
    return this.tenancy.createDevice(projectId, dto);
  }

  @Get('projects/:project_id/devices')
  @RequireScope('read')
  @ApiOperation({
    summary: "List the project's devices, oldest first, optionally by tag or external_id",
  })
  @ApiOkResponse({ type: PageOf(DeviceResponse, 'DevicePage') })
  @ApiErrors(404, 422)
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() query: ListDevicesQueryDto,
  ) {
    return this.tenancy.listDevices(projectId, query);
  }

  @Get('projects/:project_id/devices/by-external-id/:external_id')
  @RequireScope('read')
  @ApiOperation({
    summary: 'Get a device by its external_id',
    description:
      'The external_id is matched exactly (case-sensitive); URL-encode it (a "/" as %2F).',
  })
  @ApiOkResponse({ type: DeviceResponse })
  @ApiErrors({ 404: 'no device with that external_id in the API key’s project' })
  getByExternalId(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Param('external_id') externalId: string,
  ): Promise<DeviceResponse> {
    return this.tenancy.getDeviceByExternalId(projectId, externalId);
  }

  @Get('devices/:device_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a device' })
  @ApiOkResponse({ type: DeviceResponse })
  @ApiErrors(404)
  get(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
  ): Promise<DeviceResponse> {
    return this.tenancy.getDevice(projectId, deviceId);
  }

  @Patch('devices/:device_id')
  @RequireScope('manage')
  @ApiOperation({ summary: "Change a device's name or tags" })
  @ApiOkResponse({ type: DeviceResponse })
  @ApiErrors(404, 422)
  update(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Body() dto: UpdateDeviceDto,
  ): Promise<DeviceResponse> {
    return this.tenancy.updateDevice(projectId, deviceId, dto);
  }
}
