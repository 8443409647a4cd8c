import { AppError, AppErrorCode } from '@app/common';
import { json, NextFunction, Request, Response } from 'express';

export type RawBodyRequest = Request & { rawBody?: Buffer };

/** body-parser's error `type`s: the client sent something we could not read. */
const PARSER_ERRORS: Record<string, { code: AppErrorCode; message: string }> = {
  'entity.parse.failed': { code: 'bad_request', message: 'the request body is not valid JSON' },
  'entity.too.large': {
    code: 'payload_too_large',
    message: 'the request body is larger than 8 MiB',
  },
  'encoding.unsupported': {
    code: 'unsupported_media_type',
    message: 'unsupported Content-Encoding',
  },
  'charset.unsupported': {
    code: 'unsupported_media_type',
    message: 'unsupported charset; send UTF-8 JSON',
  },
  'request.aborted': { code: 'bad_request', message: 'the request was aborted' },
  'request.size.invalid': {
    code: 'bad_request',
    message: 'the body length does not match Content-Length',
  },
};

/**
 * The JSON body parser, with its errors turned into our own before Nest sees them (Nest
 * would otherwise turn them into a bare 400 carrying the parser's message, or a 500).
 */
export function jsonBodyMiddleware(limit: string) {
  // The raw bytes are kept for POST /telemetry, which queues the body as received rather
  // than serialising 5,000 parsed events again (see TelemetryService.accept).
  const parse = json({
    limit,
    verify: (req, _res, buf) => {
      (req as RawBodyRequest).rawBody = buf;
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const known = PARSER_ERRORS[(err as { type?: string }).type ?? ''];
      if (!known) return next(err);
      const detail =
        known.code === 'bad_request' && err instanceof SyntaxError ? ` (${err.message})` : '';
      next(new AppError(known.code, `${known.message}${detail}`));
    });
  };
}
