import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Request, Response } from 'express';
import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

/** Where the console is served; `GET /` links here. */
export const CONSOLE_PATH = '/console';

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
          path.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
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
