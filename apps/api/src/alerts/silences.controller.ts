import {
  CreateSilenceDto,
  ListSilencesQueryDto,
  SilenceResponse,
  SilencesService,
} from '@app/alerts';
import { PageOf, ProjectId } from '@app/common';
import { RulesService } from '@app/rules';
import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('silences')
@Controller()
export class SilencesController {
  constructor(
    private readonly silences: SilencesService,
    private readonly rules: RulesService,
  ) {}

  @Post('projects/:project_id/silences')
  @HttpCode(201)
  @RequireScope('manage')
  @ApiOperation({
    summary: 'Silence alerts for a while',
    description:
      'While a silence covers an alert (every matcher given matches: rule_id, device_id, a tag ' +
      'of the device), its alerts still open, resolve and keep their record, but their webhook ' +
      'events are not sent; when no silence covers a still active alert any more, its latest ' +
      'muted event is sent, once.',
  })
  @ApiCreatedResponse({ type: SilenceResponse })
  @ApiErrors(404, 422)
  async create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Body() dto: CreateSilenceDto,
  ): Promise<SilenceResponse> {
    if (dto.rule_id !== undefined) await this.rules.get(projectId, dto.rule_id);
    return this.silences.create(projectId, dto);
  }

  @Get('projects/:project_id/silences')
  @RequireScope('read')
  @ApiOperation({ summary: "The project's silences, oldest first" })
  @ApiOkResponse({ type: PageOf(SilenceResponse, 'SilencePage') })
  @ApiErrors(404, 422)
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() q: ListSilencesQueryDto,
  ) {
    return this.silences.list(projectId, q.state, q.limit, q.cursor);
  }

  @Get('silences/:silence_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a silence' })
  @ApiOkResponse({ type: SilenceResponse })
  @ApiErrors(404)
  get(
    @CurrentProject() projectId: ProjectId,
    @Param('silence_id', new UuidParam('silence')) silenceId: string,
  ): Promise<SilenceResponse> {
    return this.silences.get(projectId, silenceId);
  }

  @Post('silences/:silence_id/expire')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'End a silence now (an expired one stays as it was)' })
  @ApiOkResponse({ type: SilenceResponse })
  @ApiErrors(404)
  expire(
    @CurrentProject() projectId: ProjectId,
    @Param('silence_id', new UuidParam('silence')) silenceId: string,
  ): Promise<SilenceResponse> {
    return this.silences.expire(projectId, silenceId);
  }
}
