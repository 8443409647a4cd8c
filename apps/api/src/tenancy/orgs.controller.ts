import { ListQueryDto, PageOf } from '@app/common';
import {
  CreateOrgDto,
  CreateProjectDto,
  OrgResponse,
  ProjectResponse,
  TenancyService,
} from '@app/tenancy';
import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
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
  @ApiErrors(422, { 409: 'an org with this name exists' })
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
  @ApiErrors(404)
  get(@Param('org_id', new UuidParam('org')) orgId: string): Promise<OrgResponse> {
    return this.tenancy.getOrg(orgId);
  }

  @Post(':org_id/projects')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a project in an org' })
  @ApiCreatedResponse({ type: ProjectResponse })
  @ApiErrors(404, 422, { 409: 'a project with this name exists in the org' })
  createProject(
    @Param('org_id', new UuidParam('org')) orgId: string,
    @Body() dto: CreateProjectDto,
  ): Promise<ProjectResponse> {
    return this.tenancy.createProject(orgId, dto);
  }

  @Get(':org_id/projects')
  @ApiOperation({ summary: "List an org's projects, oldest first" })
  @ApiOkResponse({ type: PageOf(ProjectResponse, 'ProjectPage') })
  @ApiErrors(404)
  listProjects(@Param('org_id', new UuidParam('org')) orgId: string, @Query() query: ListQueryDto) {
    return this.tenancy.listProjects(orgId, query.limit, query.cursor);
  }
}
