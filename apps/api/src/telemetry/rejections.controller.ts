import { PageOf, ProjectId } from '@app/common';
import { ListRejectionsQueryDto, RejectionResponse, TelemetryReadsService } from '@app/telemetry';
import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('telemetry')
@Controller()
export class RejectionsController {
  constructor(private readonly reads: TelemetryReadsService) {}

  @Get('projects/:project_id/rejected-readings')
  @RequireScope('read')
  @ApiOperation({
    summary: 'Accepted readings that storage refused, newest first',
    description:
      'A reading PostgreSQL cannot store (the rest of its batch is stored), or a whole batch ' +
      'that kept failing, is set aside here with the reason instead of holding up the ' +
      "device's later batches. Filter by device_id or by the batch_id a 202 returned.",
  })
  @ApiOkResponse({ type: PageOf(RejectionResponse, 'RejectionPage') })
  @ApiErrors(404, 422)
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() q: ListRejectionsQueryDto,
  ) {
    return this.reads.listRejections(
      projectId,
      { deviceId: q.device_id, batchId: q.batch_id },
      { limit: q.limit ?? 100, cursor: q.cursor },
    );
  }
}
