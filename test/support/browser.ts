import { readEnv } from '@app/config';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ROOT } from './live-stack';

export const CONSOLE_DIR = join(ROOT, 'dist', 'console');

/** The console's build, made once if this checkout has none (`npm run build:console`). */
export function ensureConsoleBuilt(): void {
  if (existsSync(join(CONSOLE_DIR, 'index.html'))) return;
  execFileSync('npm', ['run', '--silent', 'build:console'], { cwd: ROOT, stdio: 'inherit' });
}

/**
 * Debian's Chromium, headless. As root it needs --no-sandbox; the network flags keep it
 * from calling home, which a closed network refuses many times a second.
 */
export function launchChromium(): Promise<Browser> {
  const env = readEnv();
  return chromium.launch({
    executablePath: env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.x A/AA). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis)))
    // Evaluated through the driver, not as a <script>: the console's CSP (rightly) refuses
    // inline scripts.
    await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // In the page: axe-core's global, run over the whole document.
    const g = globalThis as any;
    const result = (await g.axe.run(g.document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    })) as {
      violations: Array<{
        id: string;
        impact: string | null;
        help: string;
        nodes: Array<{ target: unknown[] }>;
      }>;
    };
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * Screenshots go to docs/images when UPDATE_SCREENSHOTS=1 (the README shows them), else
 * to a temporary folder the run prints.
 */
export function screenshotDir(): string {
  const dir =
    readEnv().UPDATE_SCREENSHOTS === '1'
      ? join(ROOT, 'docs', 'images')
      : join(tmpdir(), 'console-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
