import { PageOf } from '@app/common';
import {
  CreateDeviceDto,
  DeviceResponse,
  ListDevicesQueryDto,
  TenancyService,
  UpdateDeviceDto,
} from '@app/tenancy';
import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ErrorResponse } from '../http/error-response.dto';
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
  @ApiNotFoundResponse({ type: ErrorResponse, description: 'not the API key’s project' })
  @ApiConflictResponse({ type: ErrorResponse, description: 'external_id already registered' })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: string,
    @Body() dto: CreateDeviceDto,
  ): Promise<DeviceResponse> {
    return this.tenancy.createDevice(projectId, dto);
  }

  @Get('projects/:project_id/devices')
  @RequireScope('read')
  @ApiOperation({ summary: "List the project's devices, oldest first, optionally by tag" })
  @ApiOkResponse({ type: PageOf(DeviceResponse, 'DevicePage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: string,
    @Query() query: ListDevicesQueryDto,
  ) {
    return this.tenancy.listDevices(projectId, query);
  }

  @Get('devices/:device_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a device' })
  @ApiOkResponse({ type: DeviceResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  get(
    @CurrentProject() projectId: string,
    @Param('device_id', new UuidParam('device')) deviceId: string,
  ): Promise<DeviceResponse> {
    return this.tenancy.getDevice(projectId, deviceId);
  }

  @Patch('devices/:device_id')
  @RequireScope('manage')
  @ApiOperation({ summary: "Change a device's name or tags" })
  @ApiOkResponse({ type: DeviceResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  update(
    @CurrentProject() projectId: string,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Body() dto: UpdateDeviceDto,
  ): Promise<DeviceResponse> {
    return this.tenancy.updateDevice(projectId, deviceId, dto);
  }
}
