import { EnvSource } from '@app/config';
import { bootTestApi, TenantFactory, TestApp } from '@app/testing';
import { ApiModule } from '@api/api.module';
import { configureApp } from '@api/configure-app';
import type { App } from 'supertest/types';

export interface RunningApi extends TestApp {
  server: App;
  tenants: TenantFactory;
}

/** The real api (ApiModule + configureApp) on this run's database and Redis prefix. */
export async function startApi(overrides: EnvSource = {}): Promise<RunningApi> {
  const api = await bootTestApi((config) => ApiModule.forRoot(config), configureApp, overrides);
  const server = api.app.getHttpServer() as App;
  return { ...api, server, tenants: new TenantFactory(server) };
}
