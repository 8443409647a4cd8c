import { readEnv } from '@app/config';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { RunningApi, startApi } from '../support/api';

const COMMITTED = join(__dirname, '..', '..', 'docs', 'openapi.json');

/**
 * The OpenAPI document is generated from the code and committed, so reviewers see API
 * changes in diffs. This test fails when the two drift; `npm run openapi:update` rewrites
 * the committed copy.
 */
describe('OpenAPI document (e2e)', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  it('matches docs/openapi.json', async () => {
    const generated = `${JSON.stringify((await request(api.server).get('/docs-json').expect(200)).body, null, 2)}\n`;
    if (readEnv().UPDATE_OPENAPI === '1') writeFileSync(COMMITTED, generated);
    const committed = readFileSync(COMMITTED, 'utf8');
    expect(JSON.parse(generated)).toEqual(JSON.parse(committed));
  });

  it('documents a summary, responses and auth for every operation', async () => {
    const doc = (await request(api.server).get('/docs-json').expect(200)).body as {
      paths: Record<
        string,
        Record<
          string,
          { summary?: string; responses: Record<string, unknown>; security?: unknown[] }
        >
      >;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['admin', 'api-key']);
    const problems: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        if (!op.summary) problems.push(`${name}: no summary`);
        if (!Object.keys(op.responses).some((code) => /^2/.test(code)))
          problems.push(`${name}: no success response`);
        const isPublic = /^\/(health|metrics|$)/.test(path);
        if (!isPublic && !op.security?.length) problems.push(`${name}: no auth scheme`);
        if (!isPublic && !op.responses['401']) problems.push(`${name}: no 401 response`);
      }
    }
    expect(problems).toEqual([]);
  });
});
