import { AppConfig, LogFormatSetting } from '@app/config';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigService } from '@nestjs/config';
import { LoggerModule, Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import pinoPretty from 'pino-pretty';

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

export type LogFormat = 'json' | 'pretty';

/**
 * What `LOG_FORMAT` means: `json` and `pretty` as said; `auto` is JSON lines under
 * `NODE_ENV=production` or `test` (what log collectors and our tests read) and readable
 * lines (pino-pretty) in development or, without a `NODE_ENV` (the receiver), on a terminal.
 */
export function resolveLogFormat(
  setting: LogFormatSetting,
  nodeEnv: string | undefined,
  isTTY: boolean,
): LogFormat {
  if (setting !== 'auto') return setting;
  if (nodeEnv === 'production' || nodeEnv === 'test') return 'json';
  return nodeEnv === 'development' || isTTY ? 'pretty' : 'json';
}

/** `resolveLogFormat` for this process's stdout. */
export const logFormatHere = (setting: LogFormatSetting, nodeEnv: string | undefined): LogFormat =>
  resolveLogFormat(setting, nodeEnv, process.stdout.isTTY === true);

/**
 * pino-pretty in this thread (no worker-thread transport): one line per entry, time, level,
 * `[context]` and message, then the entry's other fields (ids) as JSON on the same line.
 * Colours only on a terminal. Writes to stdout unless given a destination (tests).
 */
export function prettyStream(destination?: DestinationStream): DestinationStream {
  return pinoPretty({
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,context,req,res,responseTime',
    messageFormat: '{if context}[{context}] {end}{msg}',
    singleLine: true,
    ...(destination ? { destination, colorize: false } : {}),
  });
}

/**
 * Request lines in pretty mode: the request itself in the message (the full `req` and
 * `res` objects stay in the JSON format only).
 */
const PRETTY_HTTP: Options = {
  customSuccessMessage: (req, res, responseTime) =>
    `${requestLine(req, res)} in ${Math.round(responseTime)} ms`,
  customErrorMessage: (req, res) => `${requestLine(req, res)} failed`,
};

/** `POST /telemetry → 202`. */
export const requestLine = (req: IncomingMessage, res: ServerResponse): string =>
  `${req.method} ${req.url} → ${res.statusCode}`;

/**
 * The logger of every process: the api's request logging, the worker and the receiver.
 * `overrides` are the caller's pino-http options on top of ours.
 */
export function loggerParams(
  logLevel: string,
  format: LogFormat = 'json',
  overrides: Options = {},
  destination?: DestinationStream,
): Params {
  const options: Options = {
    ...baseOptions(logLevel),
    ...(format === 'pretty' ? PRETTY_HTTP : {}),
    ...overrides,
  };
  if (format === 'pretty') return { pinoHttp: [options, prettyStream(destination)] };
  return { pinoHttp: destination ? [options, destination] : options };
}

function baseOptions(logLevel: string): Options {
  return {
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
  };
}

/** The same pino logger for the api (with request logging) and the worker. */
export const AppLoggerModule = LoggerModule.forRootAsync({
  inject: [ConfigService],
  useFactory: (config: ConfigService<AppConfig, true>) => {
    const app = config.get('app', { infer: true });
    return loggerParams(app.logLevel, logFormatHere(app.logFormat, app.env));
  },
});
