import { AppError, createdCursor, NotFoundError, Page, toPage, ProjectId } from '@app/common';
import { AppConfig } from '@app/config';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcryptjs';
import { ApiKeyAuthService } from './api-key-auth.service';
import { API_KEY_SCOPES, generateApiKey } from './api-key.format';
import {
  ApiKeyResponse,
  CreateApiKeyDto,
  CreatedApiKeyResponse,
  CreateDeviceDto,
  CurrentApiKeyResponse,
  CreateProjectDto,
  DeviceResponse,
  EXTERNAL_ID_PATTERN,
  OrgResponse,
  ProjectResponse,
  UpdateDeviceDto,
  UpdateProjectDto,
} from './dto/tenancy.dto';
import {
  ApiKeysRepository,
  DevicesRepository,
  OrgsRepository,
  ProjectsRepository,
} from './repositories';
import {
  toApiKeyResponse,
  toDeviceResponse,
  toOrgResponse,
  toProjectResponse,
} from './tenancy.mappers';

/** bcrypt cost for key secrets: ~90 ms here, paid once per key per cache lifetime. */
const BCRYPT_ROUNDS = 10;
export const DEFAULT_PAGE_SIZE = 100;

@Injectable()
export class TenancyService {
  constructor(
    private readonly orgs: OrgsRepository,
    private readonly projects: ProjectsRepository,
    private readonly keys: ApiKeysRepository,
    private readonly devices: DevicesRepository,
    private readonly auth: ApiKeyAuthService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.quotas = config.get('quotas', { infer: true });
  }

  private readonly quotas: AppConfig['quotas'];

  // ---- orgs and projects (admin) ----

  async createOrg(name: string): Promise<OrgResponse> {
    return toOrgResponse(await this.orgs.create(name));
  }

  async getOrg(orgId: string): Promise<OrgResponse> {
    const org = await this.orgs.findById(orgId);
    if (!org) throw new NotFoundError('org');
    return toOrgResponse(org);
  }

  async listOrgs(limit = DEFAULT_PAGE_SIZE, cursor?: string): Promise<Page<OrgResponse>> {
    return toPage(await this.orgs.list(limit, cursor), limit, toOrgResponse, createdCursor);
  }

  async createProject(orgId: string, dto: CreateProjectDto): Promise<ProjectResponse> {
    await this.getOrg(orgId);
    const project = await this.projects.create(orgId, {
      name: dto.name,
      autoRegisterDevices: dto.auto_register_devices ?? true,
      retentionDays: dto.retention_days ?? null,
    });
    return toProjectResponse(project);
  }

  async listProjects(
    orgId: string,
    limit = DEFAULT_PAGE_SIZE,
    cursor?: string,
  ): Promise<Page<ProjectResponse>> {
    await this.getOrg(orgId);
    return toPage(
      await this.projects.list(orgId, limit, cursor),
      limit,
      toProjectResponse,
      createdCursor,
    );
  }

  async getProject(projectId: ProjectId): Promise<ProjectResponse> {
    const project = await this.projects.findById(projectId);
    if (!project) throw new NotFoundError('project');
    return toProjectResponse(project);
  }

  async updateProject(projectId: ProjectId, dto: UpdateProjectDto): Promise<ProjectResponse> {
    await this.getProject(projectId);
    await this.projects.update(projectId, {
      ...(dto.name !== undefined && { name: dto.name }),
      ...(dto.auto_register_devices !== undefined && {
        autoRegisterDevices: dto.auto_register_devices,
      }),
      ...(dto.retention_days !== undefined && { retentionDays: dto.retention_days }),
    });
    return this.getProject(projectId);
  }

  // ---- API keys (admin) ----

  async createApiKey(projectId: ProjectId, dto: CreateApiKeyDto): Promise<CreatedApiKeyResponse> {
    await this.getProject(projectId);
    const generated = generateApiKey();
    const key = await this.keys.create(projectId, {
      name: dto.name ?? '',
      prefix: generated.prefix,
      secretHash: await bcrypt.hash(generated.secret, BCRYPT_ROUNDS),
      scopes: dto.scopes ?? [...API_KEY_SCOPES],
    });
    return { ...toApiKeyResponse(key), key: generated.key };
  }

  async listApiKeys(
    projectId: ProjectId,
    limit = DEFAULT_PAGE_SIZE,
    cursor?: string,
  ): Promise<Page<ApiKeyResponse>> {
    await this.getProject(projectId);
    return toPage(
      await this.keys.list(projectId, limit, cursor),
      limit,
      toApiKeyResponse,
      createdCursor,
    );
  }

  /** The key a request presented, with its project: what a client may do, and where. */
  async currentApiKey(projectId: ProjectId, keyId: string): Promise<CurrentApiKeyResponse> {
    const [key, project] = await Promise.all([
      this.keys.findInProject(projectId, keyId),
      this.getProject(projectId),
    ]);
    if (!key) throw new NotFoundError('api key');
    return { ...toApiKeyResponse(key), project };
  }

  async revokeApiKey(projectId: ProjectId, keyId: string): Promise<void> {
    if (!(await this.keys.revoke(projectId, keyId))) throw new NotFoundError('api key');
    this.auth.forget(keyId);
  }

  // ---- devices (project API keys) ----

  async createDevice(projectId: ProjectId, dto: CreateDeviceDto): Promise<DeviceResponse> {
    const device = await this.devices.create(
      projectId,
      {
        externalId: dto.external_id,
        name: dto.name ?? null,
        tags: normaliseTags(dto.tags ?? []),
      },
      this.quotas.devicesPerProject,
    );
    return toDeviceResponse(device);
  }

  async listDevices(
    projectId: ProjectId,
    opts: { limit?: number; cursor?: string; tag?: string; external_id?: string },
  ): Promise<Page<DeviceResponse>> {
    const limit = opts.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await this.devices.list(projectId, limit, {
      tag: opts.tag,
      externalId: opts.external_id,
      cursor: opts.cursor,
    });
    return toPage(rows, limit, toDeviceResponse, createdCursor);
  }

  /** The project's device with that external id; 404 naming it otherwise. */
  async getDeviceByExternalId(projectId: ProjectId, externalId: string): Promise<DeviceResponse> {
    // Text no external id can be (a control character, say) names no device: a 404, and
    // it is neither sent to PostgreSQL nor echoed.
    if (!EXTERNAL_ID_PATTERN.test(externalId)) throw new NotFoundError('device');
    const device = await this.devices.findByExternalId(projectId, externalId);
    if (!device) {
      throw new AppError('not_found', `no device with external_id "${externalId}" in this project`);
    }
    return toDeviceResponse(device);
  }

  async getDevice(projectId: ProjectId, deviceId: string): Promise<DeviceResponse> {
    const device = await this.devices.findById(projectId, deviceId);
    if (!device) throw new NotFoundError('device');
    return toDeviceResponse(device);
  }

  async updateDevice(
    projectId: ProjectId,
    deviceId: string,
    dto: UpdateDeviceDto,
  ): Promise<DeviceResponse> {
    const device = await this.devices.update(projectId, deviceId, {
      ...(dto.name !== undefined && { name: dto.name }),
      ...(dto.tags !== undefined && { tags: normaliseTags(dto.tags) }),
    });
    if (!device) throw new NotFoundError('device');
    return toDeviceResponse(device);
  }
}

/** Tags are a set: duplicates dropped, order kept. */
function normaliseTags(tags: string[]): string[] {
  return [...new Set(tags)];
}
