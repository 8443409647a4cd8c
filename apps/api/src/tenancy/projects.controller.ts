import { asProjectId, ListQueryDto, PageOf } from '@app/common';
import {
  ApiKeyResponse,
  CreateApiKeyDto,
  CreatedApiKeyResponse,
  ProjectResponse,
  TenancyService,
  UpdateProjectDto,
} from '@app/tenancy';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

/** Admin routes: the admin token covers every project, so `:project_id` is the tenant at hand. */
@ApiTags('projects')
@AdminOnly()
@Controller('projects/:project_id')
export class ProjectsController {
  constructor(private readonly tenancy: TenancyService) {}

  @Get()
  @ApiOperation({ summary: 'Get a project' })
  @ApiOkResponse({ type: ProjectResponse })
  @ApiErrors(404)
  get(@Param('project_id', new UuidParam('project')) projectId: string): Promise<ProjectResponse> {
    return this.tenancy.getProject(asProjectId(projectId));
  }

  @Patch()
  @ApiOperation({ summary: 'Rename a project or change its settings' })
  @ApiOkResponse({ type: ProjectResponse })
  @ApiErrors(404, 409, 422)
  update(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Body() dto: UpdateProjectDto,
  ): Promise<ProjectResponse> {
    return this.tenancy.updateProject(asProjectId(projectId), dto);
  }

  @Post('api-keys')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create an API key; the full key is shown only in this response' })
  @ApiCreatedResponse({ type: CreatedApiKeyResponse })
  @ApiErrors(404, 422)
  createKey(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Body() dto: CreateApiKeyDto,
  ): Promise<CreatedApiKeyResponse> {
    return this.tenancy.createApiKey(asProjectId(projectId), dto);
  }

  @Get('api-keys')
  @ApiOperation({ summary: "List a project's API keys (no secrets), oldest first" })
  @ApiOkResponse({ type: PageOf(ApiKeyResponse, 'ApiKeyPage') })
  @ApiErrors(404)
  listKeys(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Query() query: ListQueryDto,
  ) {
    return this.tenancy.listApiKeys(asProjectId(projectId), query.limit, query.cursor);
  }

  @Delete('api-keys/:key_id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key; every api replica refuses it within 5 s' })
  @ApiNoContentResponse({ description: 'revoked (also when it already was)' })
  @ApiErrors(404)
  async revokeKey(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Param('key_id', new UuidParam('api key')) keyId: string,
  ): Promise<void> {
    await this.tenancy.revokeApiKey(asProjectId(projectId), keyId);
  }
}
