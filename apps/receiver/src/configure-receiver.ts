import { NestExpressApplication } from '@nestjs/platform-express';
import { NextFunction, raw, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import { BODY_LIMIT_BYTES } from './receiver.constants';

/**
 * Shared by `main.ts` and the e2e tests. The app must be created with `bodyParser: false`:
 * every body is kept as raw bytes, whatever its content type, because the signature is
 * over the exact bytes sent.
 */
export function configureReceiver(app: NestExpressApplication): void {
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  app.use(rawBodyMiddleware(BODY_LIMIT_BYTES));
  app.enableShutdownHooks();
}

/** body-parser's `raw()` for every content type, its errors answered in plain text. */
export function rawBodyMiddleware(limit: number) {
  const parse = raw({ type: () => true, limit });
  return (req: Request, res: Response, next: NextFunction): void => {
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const status = (err as { status?: number }).status ?? 400;
      const message =
        status === 413 ? `body larger than ${limit} bytes` : 'could not read the request body';
      res.status(status).type('text/plain').send(`${message}\n`);
    });
  };
}
