import { ProjectId } from '@app/common';
import { CATALOG_READINGS, DeviceMetricsResponse, TelemetryReadsService } from '@app/telemetry';
import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('telemetry')
@Controller()
export class DeviceMetricsController {
  constructor(private readonly reads: TelemetryReadsService) {}

  @Get('devices/:device_id/metrics')
  @RequireScope('read')
  @ApiOperation({
    summary: 'The metrics a device sends: their JSON types, newest value, and use to rules',
    description:
      `Computed over the device's newest ${CATALOG_READINGS} readings. ` +
      'Rules and aggregates read only JSON number values: a metric sent as a string ("21.5") shows ' +
      'the type string, and usable_by_rules false if it never came as a number.',
  })
  @ApiOkResponse({ type: DeviceMetricsResponse })
  @ApiErrors({
    404: 'unknown device, or one of another project',
    429: 'too many telemetry reads at once',
  })
  metrics(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
  ): Promise<DeviceMetricsResponse> {
    return this.reads.metricCatalog(projectId, deviceId);
  }
}
