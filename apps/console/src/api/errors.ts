import type { Schemas } from './client';

type ErrorBody = Schemas['ErrorResponse'];

/** A refused or failed request, with what the API said about it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Array<{ field: string; message: string }> = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const isErrorBody = (body: unknown): body is ErrorBody =>
  typeof body === 'object' && body !== null && typeof (body as ErrorBody).message === 'string';

/** Turns an answer of openapi-fetch into its data, or throws what went wrong, in words. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch {
    throw new ApiError(0, 'The api cannot be reached. Is it running?');
  }
  const { data, error, response } = result;
  if (response.ok) return data as T;
  if (isErrorBody(error)) {
    const retry = response.headers.get('Retry-After');
    const suffix =
      retry && [429, 503].includes(response.status) ? ` (try again in ${retry} s)` : '';
    throw new ApiError(response.status, error.message + suffix, error.details ?? []);
  }
  throw new ApiError(response.status, `The api answered ${response.status} ${response.statusText}`);
}

/** A field → message map of a 422's details, for messages beside the form's inputs. */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const d of error.details) {
    const field = d.field.split('.')[0] || '_';
    out[field] = out[field] ? `${out[field]}; ${d.message}` : d.message;
  }
  return out;
}

export const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
