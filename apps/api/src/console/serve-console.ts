import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Request, Response } from 'express';
import { existsSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

/** Where the console is served; `GET /` links here. */
export const CONSOLE_PATH = '/console';

/** Scripts, styles and requests from this origin only; uPlot and Preact set inline styles. */
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

/**
 * The web console: static files built by Vite (apps/console), served as they are. The
 * files carry no credentials: the console signs in with a project API key and calls the
 * public API like any client. Assets have content hashes in their names and may be cached
 * for good; index.html must be asked for again so a new build is picked up.
 */
export function serveConsole(app: NestExpressApplication, consoleDir: string | null): void {
  const dir = consoleDir === null ? null : resolve(consoleDir);
  if (dir !== null && existsSync(join(dir, 'index.html'))) {
    app.useStaticAssets(dir, {
      prefix: CONSOLE_PATH,
      index: 'index.html',
      setHeaders: (res: Response, path: string) => {
        res.setHeader(
          'Cache-Control',
          relative(dir, path).startsWith(`assets${sep}`)
            ? 'public, max-age=31536000, immutable'
            : 'no-cache',
        );
        // The page that holds an API key runs no inline script and talks to this api only
        // (the global policy allows inline scripts for Swagger UI at /docs).
        res.setHeader('Content-Security-Policy', CONSOLE_CSP);
      },
    });
    return;
  }
  // Not built (or switched off): say so instead of the generic "no such route".
  const message =
    dir === null
      ? 'the console is switched off here (CONSOLE_ENABLED=false)'
      : `the console is not built here: run \`npm run build:console\` (npm run build does it too), or point CONSOLE_DIR at the built files`;
  app.use(CONSOLE_PATH, (_req: Request, res: Response) => {
    res.status(404).json({ statusCode: 404, error: 'Not Found', message });
  });
}
