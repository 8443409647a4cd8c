/**
 * Error codes the HTTP layer maps to status codes (`apps/api` error filter). Feature libs
 * throw subclasses of {@link AppError}; they never import anything HTTP.
 */
export type AppErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'validation_failed'
  | 'rate_limited'
  | 'unavailable';

export interface ErrorDetail {
  field: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** Seconds, for `rate_limited` and `unavailable`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends AppError {
  constructor(resource: string) {
    super('not_found', `${resource} not found`);
  }
}

export class ConflictError extends AppError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** "validation failed: a: …; b: …; c: … (and N more)": the 422 message over its details. */
export function validationFailed(details: ErrorDetail[]): AppError {
  const head = details
    .slice(0, 3)
    .map((d) => `${d.field}: ${d.message}`)
    .join('; ');
  const more = details.length > 3 ? ` (and ${details.length - 3} more)` : '';
  return new AppError('validation_failed', `validation failed: ${head}${more}`, details);
}
