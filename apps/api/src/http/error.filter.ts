import { AppError, AppErrorCode, ErrorDetail, sqlState } from '@app/common';
import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

const STATUS_BY_CODE: Record<AppErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  unavailable: 503,
};

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: ErrorDetail[];
  error_id?: string;
}

/**
 * Every error leaves the api in the contract's shape. Anything we did not anticipate is a
 * 500 with an error id that is also in the log line, so a user's report can be matched.
 * Two database errors are never a 500, whatever code raised them: a statement timeout
 * (503) and a value PostgreSQL refused (422, since it can only have come from the client).
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ErrorFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request>();
    const { body, retryAfter } = this.toBody(exception, req);
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown, req: Request): { body: ErrorBody; retryAfter?: number } {
    if (exception instanceof AppError) {
      const status = STATUS_BY_CODE[exception.code];
      const retryAfter =
        exception.retryAfterSeconds ?? (status === 503 || status === 429 ? 1 : undefined);
      return { body: build(status, exception.message, exception.details), retryAfter };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : Array.isArray((response as { message?: unknown }).message)
            ? (response as { message: string[] }).message.join('; ')
            : String((response as { message?: unknown }).message ?? exception.message);
      const details = (response as { details?: ErrorDetail[] }).details;
      if (status === 400 && /^Failed to decode param /.test(message)) {
        // The router could not %-decode a path segment (`/devices/%zz`; Nest turns its
        // URIError into this 400): such a path names no resource, like an unknown id.
        return { body: build(404, 'not found: the path is not valid %-encoding') };
      }
      return {
        body: build(
          status,
          status === 404 && /^Cannot /.test(message) ? 'no such route' : message,
          details,
        ),
        retryAfter: status === 503 ? 5 : undefined,
      };
    }
    if (isDependencyDown(exception)) {
      this.logger.warn({ err: (exception as Error).message }, 'a dependency is unavailable');
      return {
        body: build(503, 'a dependency (database) is unavailable; retry shortly'),
        retryAfter: 5,
      };
    }
    const state = sqlState(exception);
    if (state === QUERY_CANCELED) {
      // API_STATEMENT_TIMEOUT_MS ran out: the request asked for more work than a read may
      // take (or the database is overloaded), neither of which is our bug.
      this.logger.warn({ method: req.method, url: req.url }, 'statement timed out');
      return {
        body: build(
          503,
          'the query took too long and was cancelled; narrow it (a shorter time range, a larger bucket, a smaller limit) and retry',
        ),
        retryAfter: 5,
      };
    }
    if (state?.startsWith(DATA_EXCEPTION_CLASS)) {
      // PostgreSQL refused a value: it came from the request, so the client gets a 4xx,
      // but it means a validator is missing; the warning with its id is how we find it.
      const errorId = randomUUID();
      const reason = pgMessage(exception);
      this.logger.warn(
        { err: exception, error_id: errorId, sqlstate: state, method: req.method, url: req.url },
        'PostgreSQL refused a value the validators let through',
      );
      return {
        body: {
          ...build(
            422,
            `a value in the request could not be used: ${reason} (error id ${errorId})`,
            [{ field: 'request', message: reason }],
          ),
          error_id: errorId,
        },
      };
    }
    const errorId = randomUUID();
    this.logger.error(
      { err: exception, error_id: errorId, method: req.method, url: req.url },
      'unhandled error',
    );
    return {
      body: {
        ...build(500, `internal error; quote error id ${errorId} when reporting it`),
        error_id: errorId,
      },
    };
  }
}

/** SQLSTATE query_canceled: statement_timeout, or a cancel request. */
const QUERY_CANCELED = '57014';
/** SQLSTATE class 22, data exception: a value PostgreSQL cannot take (a date, a NUL…). */
const DATA_EXCEPTION_CLASS = '22';

/**
 * PostgreSQL's own sentence, from the driver's error that TypeORM wraps. It quotes the
 * value, which the client sent and may be long, hence the cut.
 */
function pgMessage(err: unknown): string {
  const e = err as { message?: unknown; driverError?: { message?: unknown } };
  const message = e?.driverError?.message ?? e?.message;
  if (typeof message !== 'string' || !message) return 'invalid value';
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

function build(status: number, message: string, details?: ErrorDetail[]): ErrorBody {
  return {
    statusCode: status,
    error: STATUS_CODES[status] ?? 'Error',
    message,
    ...(details && details.length > 0 ? { details } : {}),
  };
}

/**
 * PostgreSQL (or the pool) unreachable, restarting or out of connections: the contract's
 * "a dependency down → 503 with Retry-After", not a 500.
 */
export function isDependencyDown(err: unknown): boolean {
  const e = err as { code?: unknown; driverError?: { code?: unknown }; message?: unknown };
  const code = String(e?.driverError?.code ?? e?.code ?? '');
  const message = String(e?.message ?? '');
  return (
    code.startsWith('08') || // connection exception
    [
      '57P01',
      '57P02',
      '57P03',
      '53300',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
    ].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i.test(
      message,
    )
  );
}
