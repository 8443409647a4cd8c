import { AppConfig } from '@app/config';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigService } from '@nestjs/config';
import { LoggerModule, Params } from 'nestjs-pino';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Paths pino blanks out wherever they appear in a log line. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'key',
  'secret',
  'token',
  'password',
  'secret_hash',
  '*.key',
  '*.secret',
  '*.token',
  '*.password',
  '*.secret_hash',
  '*.adminToken',
];

/** A caller's `X-Request-Id` when it is sane, otherwise a fresh one; echoed on the response. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const header = req.headers['x-request-id'];
  const candidate = Array.isArray(header) ? header[0] : header;
  const id = candidate && REQUEST_ID_RE.test(candidate) ? candidate : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

export function loggerParams(logLevel: string): Params {
  return {
    pinoHttp: {
      level: logLevel,
      genReqId: requestId,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      autoLogging: {
        ignore: (req) => /^\/(health|metrics)(\/|$)/.test(req.url ?? ''),
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (req: {
          id: string;
          method: string;
          url: string;
          remoteAddress?: string;
          headers: unknown;
        }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
          remoteAddress: req.remoteAddress,
          headers: req.headers,
        }),
      },
    },
  };
}

/** The same pino logger for the api (with request logging) and the worker. */
export const AppLoggerModule = LoggerModule.forRootAsync({
  inject: [ConfigService],
  useFactory: (config: ConfigService<AppConfig, true>) =>
    loggerParams(config.get('app', { infer: true }).logLevel),
});
