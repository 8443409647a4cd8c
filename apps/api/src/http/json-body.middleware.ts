import { AppError, AppErrorCode } from '@app/common';
import { json, NextFunction, Request, Response } from 'express';

export type RawBodyRequest = Request & { rawBody?: Buffer };

export interface BodyLimit {
  bytes: number;
  /** How the 413 message names the limit. */
  label: string;
}

/** The contract's "about 100 KB": every route but POST /telemetry. */
export const DEFAULT_BODY_LIMIT: BodyLimit = { bytes: 100 * 1024, label: '100 KB' };

/**
 * A 5,000-event batch with 64 metrics per event can run to several MiB of JSON; the
 * contract sets the ceiling of POST /telemetry at 8 MiB.
 */
export const INGEST_BODY_LIMIT: BodyLimit = { bytes: 8 * 1024 * 1024, label: '8 MiB' };

/** body-parser's error `type`s: the client sent something we could not read. */
const PARSER_ERRORS: Record<string, { code: AppErrorCode; message: (limit: BodyLimit) => string }> =
  {
    'entity.parse.failed': {
      code: 'bad_request',
      message: () => 'the request body is not valid JSON',
    },
    'entity.too.large': {
      code: 'payload_too_large',
      message: (limit) => `the request body is larger than ${limit.label}`,
    },
    'encoding.unsupported': {
      code: 'unsupported_media_type',
      message: () => 'unsupported Content-Encoding',
    },
    'charset.unsupported': {
      code: 'unsupported_media_type',
      message: () => 'unsupported charset; send UTF-8 JSON',
    },
    'request.aborted': { code: 'bad_request', message: () => 'the request was aborted' },
    'request.size.invalid': {
      code: 'bad_request',
      message: () => 'the body length does not match Content-Length',
    },
  };

/** Bytes follow the headers: a positive Content-Length, or a chunked body. */
function hasBodyBytes(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > 0;
}

/**
 * A body that the JSON parser leaves unread because it is not declared JSON (`curl -d`
 * sends `application/x-www-form-urlencoded`; no header at all is not JSON either): a 415
 * that says how to send it, instead of a route validating an absent body. Null when the
 * request carries no body, or a JSON one (body-parser's type: `application/json`, any
 * parameters).
 */
export function notJsonBodyError(req: Request): AppError | null {
  if (!hasBodyBytes(req) || req.is('application/json')) return null;
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().slice(0, 100);
  const came = type ? `this one came as ${type}` : 'this one came without a Content-Type';
  const hint =
    type.toLowerCase() === 'application/x-www-form-urlencoded'
      ? " (what curl -d sends unless you add -H 'Content-Type: application/json')"
      : '';
  return new AppError(
    'unsupported_media_type',
    `the request body must be JSON sent with the header Content-Type: application/json; ${came}${hint}`,
  );
}

export type JsonBodyReader = (req: Request, res: Response) => Promise<void>;

/**
 * A route's way past the JSON parse: given the body's UTF-8 bytes, true when it has read
 * what it needs from them (and noted it on the request); `req.body` is then left unset.
 */
export type BodyShortcut = (req: RawBodyRequest, bytes: Buffer) => boolean;

const UTF8 = /^utf-?8$/i;

/** Thrown from body-parser's `verify` to end its work there: not an error. */
class ShortcutTaken extends Error {}

/**
 * Reads and parses a JSON body into `req.body` (and the bytes into `req.rawBody`), with
 * body-parser's errors turned into our own (Nest would otherwise answer a bare 400 carrying
 * the parser's message, or a 500). Does nothing when the body was read already.
 * `shortcut`: see {@link BodyShortcut}; every check before the parse (size, encoding,
 * charset) still applies.
 * `requireJson`: a body that is not declared JSON is a 415 ({@link notJsonBodyError}),
 * for a route known to take a JSON body; checked after the size, so an oversized body is
 * a 413 whatever its type.
 */
export function jsonBodyReader(
  limit: BodyLimit,
  opts: { requireJson?: boolean; shortcut?: BodyShortcut } = {},
): JsonBodyReader {
  const { shortcut } = opts;
  // The raw bytes are kept for POST /telemetry, which queues the body as received rather
  // than serialising 5,000 parsed events again (see TelemetryIntakeService.accept).
  const parse = json({
    limit: limit.bytes,
    // Called with the bytes (inflated, if they came compressed), before they are decoded.
    verify: (req, _res, buf, encoding) => {
      (req as RawBodyRequest).rawBody = buf;
      // body-parser has no way to skip its parse but an error thrown here.
      if (shortcut && UTF8.test(encoding) && shortcut(req as RawBodyRequest, buf))
        throw new ShortcutTaken();
    },
  });
  return (req, res) => {
    // body-parser refuses an announced length over the limit too, but only after reading
    // the whole body off the wire; refused here, the body is never read (and the
    // connection is closed, see unreadBodyMiddleware).
    const declared = Number(req.headers['content-length']);
    if (
      (req.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity' &&
      declared > limit.bytes
    ) {
      return Promise.reject(
        new AppError('payload_too_large', PARSER_ERRORS['entity.too.large'].message(limit)),
      );
    }
    const notJson = opts.requireJson ? notJsonBodyError(req) : null;
    if (notJson) return Promise.reject(notJson);
    return new Promise((resolve, reject) =>
      parse(req, res, (err?: unknown) =>
        err && !(err instanceof ShortcutTaken) ? reject(toAppError(err, limit)) : resolve(),
      ),
    );
  };
}

function toAppError(err: unknown, limit: BodyLimit): unknown {
  const known = PARSER_ERRORS[(err as { type?: string }).type ?? ''];
  if (!known) {
    // zlib's own error (Z_DATA_ERROR, Z_BUF_ERROR…): a body that says it is compressed but
    // is not, which body-parser passes on untyped.
    if (/^Z_/.test(String((err as { code?: unknown }).code ?? '')))
      return new AppError(
        'bad_request',
        'the request body could not be decompressed: it does not match its Content-Encoding',
      );
    return err;
  }
  const detail =
    known.code === 'bad_request' && err instanceof SyntaxError ? ` (${err.message})` : '';
  return new AppError(known.code, `${known.message(limit)}${detail}`);
}

/** The methods whose body means something; any other's is never read (RFC 9110 §9.3). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The JSON body parser for every request of a method that has a body, but those
 * `deferred` picks: their route reads its own body, with its own limit, once the guards
 * have let the request in ({@link JsonBodyInterceptor}). A body sent with a GET or a
 * DELETE is left unread, not refused: no route of those methods takes one.
 */
export function jsonBodyMiddleware(limit: BodyLimit, deferred: (req: Request) => boolean) {
  const read = jsonBodyReader(limit);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!BODY_METHODS.has(req.method) || deferred(req)) return next();
    read(req, res).then(() => next(), next);
  };
}
