import type { App } from 'supertest/types';
import request from 'supertest';
import { TEST_ADMIN_TOKEN } from './test-env';

export interface TestProject {
  orgId: string;
  projectId: string;
  keyId: string;
  /** A key with every scope. */
  apiKey: string;
  headers: { 'X-API-Key': string };
}

let counter = 0;
export const uniqueName = (label: string): string =>
  `${label}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export const adminHeaders = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/**
 * Tenants for tests, made through the public API like a real client would: each test
 * gets a fresh org and project instead of truncating tables.
 */
export class TenantFactory {
  constructor(private readonly server: App) {}

  async newOrg(): Promise<string> {
    const res = await request(this.server)
      .post('/orgs')
      .set(adminHeaders)
      .send({ name: uniqueName('org') });
    if (res.status !== 201)
      throw new Error(`POST /orgs: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  }

  async newProject(opts: { orgId?: string; scopes?: string[] } = {}): Promise<TestProject> {
    const orgId = opts.orgId ?? (await this.newOrg());
    const project = await request(this.server)
      .post(`/orgs/${orgId}/projects`)
      .set(adminHeaders)
      .send({ name: uniqueName('project') });
    if (project.status !== 201)
      throw new Error(`POST projects: ${project.status} ${JSON.stringify(project.body)}`);
    const key = await this.newKey(project.body.id as string, opts.scopes);
    return {
      orgId,
      projectId: project.body.id as string,
      keyId: key.id,
      apiKey: key.key,
      headers: { 'X-API-Key': key.key },
    };
  }

  async newKey(projectId: string, scopes?: string[]): Promise<{ id: string; key: string }> {
    const res = await request(this.server)
      .post(`/projects/${projectId}/api-keys`)
      .set(adminHeaders)
      .send({ name: 'test', ...(scopes && { scopes }) });
    if (res.status !== 201)
      throw new Error(`POST api-keys: ${res.status} ${JSON.stringify(res.body)}`);
    return { id: res.body.id as string, key: res.body.key as string };
  }
}
