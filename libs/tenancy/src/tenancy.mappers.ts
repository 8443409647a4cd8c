import { isoOrNull } from '@app/common';
import { ApiKeyEntity, DeviceEntity, OrgEntity, ProjectEntity } from './entities';
import { ApiKeyResponse, DeviceResponse, OrgResponse, ProjectResponse } from './dto/tenancy.dto';

export const toOrgResponse = (o: OrgEntity): OrgResponse => ({
  id: o.id,
  name: o.name,
  created_at: o.createdAt.toISOString(),
});

export const toProjectResponse = (p: ProjectEntity): ProjectResponse => ({
  id: p.id,
  org_id: p.orgId,
  name: p.name,
  auto_register_devices: p.autoRegisterDevices,
  retention_days: p.retentionDays,
  created_at: p.createdAt.toISOString(),
});

export const toApiKeyResponse = (k: ApiKeyEntity): ApiKeyResponse => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  scopes: k.scopes,
  created_at: k.createdAt.toISOString(),
  last_used_at: isoOrNull(k.lastUsedAt),
  revoked_at: isoOrNull(k.revokedAt),
});

export const toDeviceResponse = (d: DeviceEntity): DeviceResponse => ({
  id: d.id,
  project_id: d.projectId,
  external_id: d.externalId,
  name: d.name,
  tags: d.tags,
  created_at: d.createdAt.toISOString(),
  last_seen_at: isoOrNull(d.lastSeenAt),
});
