import { PageOf } from '@app/common';
import {
  CreateOrgDto,
  CreateProjectDto,
  ListQueryDto,
  OrgResponse,
  ProjectResponse,
  TenancyService,
} from '@app/tenancy';
import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators';
import { ErrorResponse } from '../http/error-response.dto';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('orgs')
@AdminOnly()
@Controller('orgs')
export class OrgsController {
  constructor(private readonly tenancy: TenancyService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create an org' })
  @ApiCreatedResponse({ type: OrgResponse })
  @ApiConflictResponse({ type: ErrorResponse, description: 'an org with this name exists' })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  create(@Body() dto: CreateOrgDto): Promise<OrgResponse> {
    return this.tenancy.createOrg(dto.name);
  }

  @Get()
  @ApiOperation({ summary: 'List orgs, oldest first' })
  @ApiOkResponse({ type: PageOf(OrgResponse, 'OrgPage') })
  list(@Query() query: ListQueryDto) {
    return this.tenancy.listOrgs(query.limit, query.cursor);
  }

  @Get(':org_id')
  @ApiOperation({ summary: 'Get an org' })
  @ApiOkResponse({ type: OrgResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  get(@Param('org_id', new UuidParam('org')) orgId: string): Promise<OrgResponse> {
    return this.tenancy.getOrg(orgId);
  }

  @Post(':org_id/projects')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a project in an org' })
  @ApiCreatedResponse({ type: ProjectResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiConflictResponse({
    type: ErrorResponse,
    description: 'a project with this name exists in the org',
  })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  createProject(
    @Param('org_id', new UuidParam('org')) orgId: string,
    @Body() dto: CreateProjectDto,
  ): Promise<ProjectResponse> {
    return this.tenancy.createProject(orgId, dto);
  }

  @Get(':org_id/projects')
  @ApiOperation({ summary: "List an org's projects, oldest first" })
  @ApiOkResponse({ type: PageOf(ProjectResponse, 'ProjectPage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  listProjects(@Param('org_id', new UuidParam('org')) orgId: string, @Query() query: ListQueryDto) {
    return this.tenancy.listProjects(orgId, query.limit, query.cursor);
  }
}
