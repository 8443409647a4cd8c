import { appEnv, exited, freePort, spawnApp, waitFor } from '../support/processes';

/** The real entry points, as operators run them. */
describe('process entry points (integration)', () => {
  jest.setTimeout(60000);

  it('the worker boots, reports ready and metrics, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const worker = spawnApp('worker', appEnv({ WORKER_PORT: String(port) }));
    try {
      await waitFor(`http://127.0.0.1:${port}/health/live`, 200, 30000);
      const ready = await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 10000);
      expect(await ready.json()).toMatchObject({
        status: 'ok',
        info: { database: { status: 'up' }, redis: { status: 'up' } },
      });
      const metrics = await waitFor(`http://127.0.0.1:${port}/metrics`, 200, 5000);
      expect(await metrics.text()).toContain('process_cpu_seconds_total');
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);

      const started = Date.now();
      worker.kill('SIGTERM');
      const { code, signal } = await exited(worker);
      expect(Date.now() - started).toBeLessThan(10000);
      // Nest re-raises the signal after its shutdown hooks ran: 143 as seen by a shell.
      expect(code === 0 || signal === 'SIGTERM').toBe(true);
      expect(worker.output()).toContain('SIGTERM received: draining jobs');
      expect(worker.output()).not.toMatch(/"level":(50|60)/); // nothing logged at error or fatal
    } finally {
      worker.kill('SIGKILL');
    }
  });

  it('the api serves on PORT and logs JSON with request ids, redacting credentials', async () => {
    const port = await freePort();
    const api = spawnApp('api', appEnv({ PORT: String(port) }));
    try {
      await waitFor(`http://127.0.0.1:${port}/health/ready`, 200, 30000);
      const res = await fetch(
        `http://127.0.0.1:${port}/orgs/00000000-0000-4000-8000-000000000000`,
        {
          headers: {
            Authorization: 'Bearer not-the-token-but-long',
            'X-API-Key': 'tpk_secretsecret.x',
            'X-Request-Id': 'req-42',
          },
        },
      );
      expect(res.status).toBe(401);
      expect(res.headers.get('x-request-id')).toBe('req-42');
      await new Promise((r) => setTimeout(r, 200));
      const line = api
        .output()
        .split('\n')
        .find((l) => l.includes('"req-42"'));
      expect(line).toBeDefined();
      const entry = JSON.parse(line!);
      expect(entry.req.id).toBe('req-42');
      expect(entry.res.statusCode).toBe(401);
      expect(line).not.toContain('not-the-token-but-long');
      expect(line).not.toContain('tpk_secretsecret');
      expect(entry.req.headers.authorization).toBe('[redacted]');
    } finally {
      api.kill('SIGTERM');
      await exited(api);
    }
  });

  it('refuses to boot on a bad environment with one message naming every variable', async () => {
    const api = spawnApp(
      'api',
      appEnv({ ADMIN_TOKEN: 'short', PORT: 'eighty', REDIS_URL: 'http://x' }),
    );
    const { code } = await exited(api);
    expect(code).toBe(1);
    const lines = api.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    for (const name of ['ADMIN_TOKEN', 'PORT', 'REDIS_URL']) expect(lines[0]).toContain(name);
  });
});
