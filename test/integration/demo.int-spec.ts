import { TEST_ADMIN_TOKEN, uniqueName } from '@app/testing';
import { LiveStack, runCommand, ScriptRun, startLiveStack } from '../support/live-stack';
import { freePort } from '../support/processes';

/**
 * `npm run demo` and `npm run mint-key` (scripts/*.js, plain Node) as child processes
 * against a real api on a real port, a worker and the local receiver in this process. The
 * demo streams for DEMO_DURATION_SECONDS=5 here instead of a minute.
 */
describe('npm run demo and npm run mint-key (integration)', () => {
  jest.setTimeout(60000);
  let stack: LiveStack;
  const admin = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  beforeAll(async () => {
    stack = await startLiveStack();
  });

  afterAll(async () => {
    await stack?.close();
  });

  async function get<T = any>(path: string, headers: Record<string, string>): Promise<T> {
    const res = await fetch(`${stack.apiUrl}${path}`, { headers });
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  }

  /** Every item of a paginated list. */
  async function all(path: string, headers: Record<string, string>): Promise<any[]> {
    const items: any[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: any[]; next_cursor: string | null } = await get(
        `${path}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        headers,
      );
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  const demo = (name: string): Promise<ScriptRun> =>
    runCommand(
      process.execPath,
      ['scripts/demo.js'],
      { ...stack.env, DEMO_PROJECT: name, DEMO_DURATION_SECONDS: '5', DEMO_SETTLE_SECONDS: '15' },
      45000,
    );

  function exported(out: string): Record<string, string> {
    const line = out.split('\n').find((l) => l.trim().startsWith('export API='));
    if (!line) throw new Error(`no export line in:\n${out}`);
    return Object.fromEntries([...line.matchAll(/(\w+)='([^']*)'/g)].map((m) => [m[1], m[2]]));
  }

  function summary(out: string): { opened: number; succeeded: number; verified: number } {
    const m = /alerts: (\d+) opened.*deliveries: (\d+) succeeded.*· (\d+) verified/.exec(out);
    if (!m) throw new Error(`no summary line in:\n${out}`);
    return { opened: +m[1], succeeded: +m[2], verified: +m[3] };
  }

  it('the demo opens, delivers (verified) and resolves alerts, and a second run reuses what the first made', async () => {
    const name = uniqueName('demo');
    const first = await demo(name);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/==> streaming readings/);
    expect(first.stdout).toMatch(/==> stopped streaming/);
    expect(first.stdout).toMatch(/alert opened +Greenhouse too hot on greenhouse-1/);
    expect(first.stdout).toMatch(/received +alert.created .* signature verified/);
    const s1 = summary(first.stdout);
    expect(s1.opened).toBeGreaterThanOrEqual(1);
    expect(s1.succeeded).toBeGreaterThanOrEqual(1);
    expect(s1.verified).toBe(s1.succeeded);
    const one = exported(first.stdout);

    const second = await demo(name);
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    expect(second.stdout).toMatch(/\(existed\)[\s\S]*\(existed\)/); // org, project
    expect(second.stdout).toContain('0 created, 3 existed'); // devices
    expect(second.stdout).toContain('0 created, 2 existed'); // rules
    expect(second.stdout).toContain('existed; secret rotated'); // webhook
    const s2 = summary(second.stdout);
    expect(s2.opened).toBeGreaterThanOrEqual(1);
    expect(s2.verified).toBe(s2.succeeded);
    const two = exported(second.stdout);
    expect(two.PROJECT).toBe(one.PROJECT);
    expect(two.KEY).not.toBe(one.KEY);

    // Through the api: one org and one project of that name, nothing made twice.
    const named = (await all(`/orgs`, admin)).filter((o: { name: string }) => o.name === name);
    expect(named).toHaveLength(1);
    const projects = await get(`/orgs/${named[0].id}/projects`, admin);
    expect(projects.items.map((p: { id: string }) => p.id)).toEqual([one.PROJECT]);
    const key = { 'X-API-Key': two.KEY };
    const p = `/projects/${one.PROJECT}`;
    const devices = await get(`${p}/devices`, key);
    expect(devices.items.map((d: { external_id: string }) => d.external_id).sort()).toEqual([
      'cellar-1',
      'greenhouse-1',
      'greenhouse-2',
    ]);
    expect((await get(`${p}/rules`, key)).items).toHaveLength(2);
    expect((await get(`${p}/webhooks`, key)).items).toHaveLength(1);
    expect((await get(`${p}/api-keys`, admin)).items).toHaveLength(2);
    const alerts = await get(`${p}/alerts`, key);
    expect(alerts.items.length).toBe(s1.opened + s2.opened);
    expect(alerts.items.every((a: { status: string }) => a.status === 'resolved')).toBe(true);
    const deliveries = await get(`${p}/webhook-deliveries?status=succeeded`, key);
    expect(deliveries.items.length).toBe(s1.succeeded + s2.succeeded);
  });

  it('says so and exits 1 when the api does not answer', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const run = await runCommand(process.execPath, ['scripts/demo.js'], {
      ...stack.env,
      API_URL: nobody,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`the api does not answer at ${nobody} (ECONNREFUSED)`);
    expect(run.stderr).toContain('npm run up');
    expect(run.stdout).toBe('');
  });

  it('mint-key mints another key for an existing org and project instead of a 409', async () => {
    const name = uniqueName('mint');
    const first = await runCommand('npm', ['run', '--silent', 'mint-key', '--', name], stack.env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`created org and project "${name}"`);
    const second = await runCommand(
      'npm',
      ['run', '--silent', 'mint-key', '--', name.toUpperCase(), '--export'],
      stack.env,
    );
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('org and project');
    expect(second.stderr).toContain('existed; minted a new key');
    const vars = exported(second.stdout);
    const projectLine = /^project +(\S+)$/m.exec(first.stdout)!;
    expect(vars.PROJECT).toBe(projectLine[1]);
    expect(vars.API).toBe(stack.apiUrl);
    // The new key works on that project.
    const devices = await fetch(`${stack.apiUrl}/projects/${vars.PROJECT}/devices`, {
      headers: { 'X-API-Key': vars.KEY },
    });
    expect(devices.status).toBe(200);
    expect((await get(`/projects/${vars.PROJECT}/api-keys`, admin)).items).toHaveLength(2);
  });
});
