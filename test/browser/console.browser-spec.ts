import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import request from 'supertest';
import {
  CONSOLE_DIR,
  ensureConsoleBuilt,
  launchChromium,
  screenshotDir,
  seriousViolations,
} from '../support/browser';
import { until } from '../support/fixtures';
import { type LiveStack, startLiveStack } from '../support/live-stack';

jest.setTimeout(120_000);

/** How long the pipeline may take to register the device and open the alert. */
const WAIT = { timeoutMs: 30_000, everyMs: 250 };

/**
 * The console in Chromium against the real api, worker, PostgreSQL, Redis and the local
 * webhook receiver: a device pushes readings, a rule fires, and everything a person
 * would do about it is done through the pages. Each page also passes axe-core with no
 * serious or critical violation.
 */
describe('web console in a browser', () => {
  const READINGS = 30;
  let stack: LiveStack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let projectId: string;
  let manageKey: string;
  let readKey: string;
  let ingestKey: string;
  let deviceId: string;
  let ruleId: string;
  const externalId = `greenhouse-${Date.now().toString(36)}`;
  const shots = screenshotDir();
  const screenshot = (name: string) =>
    page.screenshot({ path: join(shots, `console-${name}.png`), fullPage: true });

  const api = () => request(stack.apiUrl);
  const expectAccessible = async () => expect(await seriousViolations(page)).toEqual([]);

  beforeAll(async () => {
    ensureConsoleBuilt();
    stack = await startLiveStack({ CONSOLE_DIR });
    const tenants = stack.api.tenants;
    const project = await tenants.newProject();
    projectId = project.projectId;
    manageKey = project.apiKey;
    readKey = (await tenants.newKey(projectId, ['read'])).key;
    ingestKey = (await tenants.newKey(projectId, ['ingest'])).key;
    const key = { 'X-API-Key': manageKey };

    const rule = await api().post(`/projects/${projectId}/rules`).set(key).send({
      name: 'Too hot',
      metric: 'temperature',
      operator: '>',
      threshold: 50,
      window_n: 3,
      required_k: 2,
    });
    expect(rule.status).toBe(201);
    ruleId = rule.body.id;
    const webhook = await api()
      .post(`/projects/${projectId}/webhooks`)
      .set(key)
      .send({ url: `${stack.receiver.url}/hooks/console`, description: 'console test' });
    expect(webhook.status).toBe(201);

    // One reading a minute for the last half hour, warming from 30 to 59: two of three
    // above 50 first at the 23rd reading, so exactly one alert opens.
    const now = Math.floor(Date.now() / 60000) * 60;
    const events = Array.from({ length: READINGS }, (_, i) => ({
      ts: new Date((now - (READINGS - i) * 60) * 1000).toISOString(),
      data: { temperature: 30 + i, humidity: 40 },
    }));
    const ingest = await api()
      .post('/telemetry')
      .set({ 'X-API-Key': ingestKey })
      .send({ device_external_id: externalId, events });
    expect(ingest.status).toBe(202);
    const device = await until(
      'the device',
      async () => {
        const res = await api()
          .get(`/projects/${projectId}/devices`)
          .query({ external_id: externalId })
          .set(key);
        return res.body.items?.[0] as { id: string } | undefined;
      },
      WAIT,
    );
    deviceId = device!.id;
    await until(
      'the alert',
      async () => (await api().get(`/projects/${projectId}/alerts`).set(key)).body.items?.length,
      WAIT,
    );

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('GET / links the console, and /console/ serves it', async () => {
    const root = await api().get('/').set('Accept', 'application/json');
    expect(root.body.links.console).toBe('/console/');
    await page.goto(`${stack.apiUrl}/console/`);
    await expect(
      page.getByRole('heading', { name: 'Telemetry console' }).isVisible(),
    ).resolves.toBe(true);
    await expectAccessible();
  });

  it('refuses a wrong key and an ingest-only key with what to do about it', async () => {
    await page.getByLabel('API key').fill('tpk_nothing.here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('not valid').waitFor();
    await page.getByLabel('API key').fill(ingestKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('read scope').waitFor();
    await screenshot('sign-in');
    await expectAccessible();
  });

  it('signs in with a key kept in session storage only, and lists the device online', async () => {
    await page.getByLabel('API key').fill(manageKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: externalId });
    await row.getByText('online').waitFor();
    expect(page.url()).not.toContain(manageKey);
    expect(await page.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual([
      manageKey,
    ]);
    expect(await page.evaluate(() => Object.values((globalThis as any).localStorage))).toEqual([]);
    // A reload of the tab keeps the session; nothing else has the key.
    await page.reload();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await screenshot('devices');
    await expectAccessible();
  });

  it('charts the device: one point per reading, min/avg/max, the alert drawn on it', async () => {
    await page.getByRole('link', { name: externalId }).click();
    await page.getByRole('heading', { name: new RegExp(`Device ${externalId}`) }).waitFor();
    expect(page.url()).toContain(`#/devices/${deviceId}`);
    await page.getByRole('button', { name: 'Show temperature' }).click();
    // Last hour in 15 s buckets: each reading has a bucket of its own.
    const chart = page.locator('figure.chart');
    await chart.and(page.locator(`[data-points="${READINGS}"]`)).waitFor();
    expect(await chart.getAttribute('aria-label')).toMatch(/temperature .* min, average and max/);
    await page.getByRole('row').filter({ hasText: 'Too hot' }).getByText('open').waitFor();
    // Zoom: a drag across the chart asks for a narrower range, drawn in finer buckets.
    const box = (await page.locator('.u-over').boundingBox())!;
    // The readings fill the second half of the hour; 60 % to 90 % of it holds about 18.
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.getByRole('button', { name: 'Back to the previous range' }).waitFor();
    const zoomedChart = page.locator(`figure.chart:not([data-points="${READINGS}"])`);
    await zoomedChart.waitFor();
    const zoomed = Number(await zoomedChart.getAttribute('data-points'));
    expect(zoomed).toBeGreaterThan(READINGS * 0.4);
    expect(zoomed).toBeLessThan(READINGS * 0.8);
    await page.getByRole('button', { name: 'Back to the previous range' }).click();
    await chart.and(page.locator(`[data-points="${READINGS}"]`)).waitFor();
    await screenshot('device');
    await expectAccessible();
  });

  it('shows the alert with the window that fired it, and acknowledges it', async () => {
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    const card = page.locator('.card').filter({ hasText: 'Too hot' });
    await card.locator('figure.chart[data-points="3"]').waitFor();
    await screenshot('alerts');
    await expectAccessible();
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await page.getByText('No open alerts.').waitFor();
    await page.getByText('acknowledged', { exact: true }).first().click();
    await page
      .locator('.card')
      .filter({ hasText: 'Too hot' })
      .locator('.badge-acknowledged')
      .waitFor();
    const alerts = await api().get(`/projects/${projectId}/alerts`).set({ 'X-API-Key': readKey });
    expect(alerts.body.items.map((a: { status: string }) => a.status)).toEqual(['acknowledged']);
  });

  it('shows the webhook deliveries with their attempts and the circuit', async () => {
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await page.getByText('circuit closed').waitFor();
    // alert.created, then alert.acknowledged: both delivered to the receiver.
    for (const type of ['alert.created', 'alert.acknowledged']) {
      await page
        .getByRole('row')
        .filter({ hasText: type })
        .getByText('succeeded')
        .waitFor({ timeout: 30_000 });
    }
    const created = page.getByRole('row').filter({ hasText: 'alert.created' });
    await created.getByRole('button', { name: 'Attempts' }).click();
    await page
      .getByRole('table', { name: /Attempts of delivery/ })
      .getByRole('cell', { name: /^2\d\d$/ })
      .waitFor();
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByRole('status').getByText('webhook.test').waitFor();
    await page
      .getByRole('row')
      .filter({ hasText: 'webhook.test' })
      .getByText('succeeded')
      .waitFor({ timeout: 30_000 });
    await screenshot('webhooks');
    await expectAccessible();
  });

  it("edits a rule, shows the API's 422 beside the field, and previews a backtest", async () => {
    await page.getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('heading', { name: 'Rules' }).waitFor();
    await page
      .getByRole('row')
      .filter({ hasText: 'Too hot' })
      .getByRole('button', { name: 'Edit' })
      .click();
    await page.getByLabel('Breaching (k of n)').fill('9');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('[data-field="required_k"] .field-error').waitFor();
    expect(await page.locator('[data-field="required_k"] .field-error').textContent()).toMatch(
      /window_n/,
    );
    await page.getByLabel('Breaching (k of n)').fill('2');
    await page.getByRole('button', { name: 'Last 24 hours' }).click();
    await page.getByText('1 alert would have opened').waitFor();
    await page.locator('.backtest figure.chart').waitFor();
    await screenshot('rules');
    await expectAccessible();
    await page.getByRole('button', { name: 'Cancel' }).click();
    const rule = await api().get(`/rules/${ruleId}`).set({ 'X-API-Key': readKey });
    expect(rule.body.required_k).toBe(2);
  });

  it('greys out what a read key may not do, and says why', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual(
      [],
    );
    await page.getByLabel('API key').fill(readKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('read only').waitFor();
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByText('all', { exact: true }).click();
    const resolve = page
      .locator('.card')
      .filter({ hasText: 'Too hot' })
      .getByRole('button', { name: 'Resolve' });
    await resolve.waitFor();
    expect(await resolve.isDisabled()).toBe(true);
    expect(await resolve.getAttribute('title')).toMatch(/manage scope/);
    await page.getByRole('link', { name: 'Rules' }).click();
    expect(await page.getByRole('button', { name: 'New rule' }).isDisabled()).toBe(true);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    expect(await page.getByRole('button', { name: 'Send test event' }).isDisabled()).toBe(true);
    await expectAccessible();
  });

  it('keeps the key to its tab: another tab of the same browser starts signed out', async () => {
    // sessionStorage belongs to one tab; localStorage or a cookie would be shared.
    expect(await page.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual([
      readKey,
    ]);
    const tab = await context.newPage();
    await tab.goto(`${stack.apiUrl}/console/`);
    await tab.getByRole('button', { name: 'Sign in' }).waitFor();
    // Give a remembered key (there is none) the time to sign in before looking.
    await tab.waitForTimeout(500);
    expect(await tab.getByRole('heading', { name: 'Devices' }).count()).toBe(0);
    expect(await tab.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual([]);
    await tab.close();
  });
});
