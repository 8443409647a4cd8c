import { PageOf } from '@app/common';
import {
  ApiKeyResponse,
  CreateApiKeyDto,
  CreatedApiKeyResponse,
  ListQueryDto,
  ProjectResponse,
  TenancyService,
  UpdateProjectDto,
} from '@app/tenancy';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators';
import { ErrorResponse } from '../http/error-response.dto';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('projects')
@AdminOnly()
@Controller('projects/:project_id')
export class ProjectsController {
  constructor(private readonly tenancy: TenancyService) {}

  @Get()
  @ApiOperation({ summary: 'Get a project' })
  @ApiOkResponse({ type: ProjectResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  get(@Param('project_id', new UuidParam('project')) projectId: string): Promise<ProjectResponse> {
    return this.tenancy.getProject(projectId);
  }

  @Patch()
  @ApiOperation({ summary: 'Rename a project or change its settings' })
  @ApiOkResponse({ type: ProjectResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiConflictResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  update(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Body() dto: UpdateProjectDto,
  ): Promise<ProjectResponse> {
    return this.tenancy.updateProject(projectId, dto);
  }

  @Post('api-keys')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create an API key; the full key is shown only in this response' })
  @ApiCreatedResponse({ type: CreatedApiKeyResponse })
  @ApiNotFoundResponse({ type: ErrorResponse })
  @ApiUnprocessableEntityResponse({ type: ErrorResponse })
  createKey(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Body() dto: CreateApiKeyDto,
  ): Promise<CreatedApiKeyResponse> {
    return this.tenancy.createApiKey(projectId, dto);
  }

  @Get('api-keys')
  @ApiOperation({ summary: "List a project's API keys (no secrets), oldest first" })
  @ApiOkResponse({ type: PageOf(ApiKeyResponse, 'ApiKeyPage') })
  @ApiNotFoundResponse({ type: ErrorResponse })
  listKeys(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Query() query: ListQueryDto,
  ) {
    return this.tenancy.listApiKeys(projectId, query.limit, query.cursor);
  }

  @Delete('api-keys/:key_id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key; every api replica refuses it within 5 s' })
  @ApiNoContentResponse({ description: 'revoked (also when it already was)' })
  @ApiNotFoundResponse({ type: ErrorResponse })
  async revokeKey(
    @Param('project_id', new UuidParam('project')) projectId: string,
    @Param('key_id', new UuidParam('api key')) keyId: string,
  ): Promise<void> {
    await this.tenancy.revokeApiKey(projectId, keyId);
  }
}
