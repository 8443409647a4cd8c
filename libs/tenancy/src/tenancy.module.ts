import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApiKeyAuthService } from './api-key-auth.service';
import { ApiKeyEntity, DeviceEntity, OrgEntity, ProjectEntity } from './entities';
import {
  ApiKeysRepository,
  DeviceProgressRepository,
  DevicesRepository,
  OrgsRepository,
  ProjectsRepository,
} from './repositories';
import { TenancyService } from './tenancy.service';

@Module({
  imports: [TypeOrmModule.forFeature([OrgEntity, ProjectEntity, ApiKeyEntity, DeviceEntity])],
  providers: [
    OrgsRepository,
    ProjectsRepository,
    ApiKeysRepository,
    DevicesRepository,
    DeviceProgressRepository,
    TenancyService,
    ApiKeyAuthService,
  ],
  exports: [
    TenancyService,
    ApiKeyAuthService,
    DevicesRepository,
    DeviceProgressRepository,
    ProjectsRepository,
  ],
})
export class TenancyModule {}
