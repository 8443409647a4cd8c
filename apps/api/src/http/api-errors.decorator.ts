import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ErrorResponse } from './error-response.dto';

/** The error statuses the api answers with an `ErrorResponse` body. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503;

/** A status, or statuses with what they mean on the route at hand. */
export type ErrorSpec = ErrorStatus | Partial<Record<ErrorStatus, string>>;

/**
 * Documents the error answers of a route (or, on a controller, of each of its routes), all
 * with the one error body: `@ApiErrors(404, 422)`, and where the status alone says too
 * little, with a description: `@ApiErrors(422, { 409: 'external_id already registered' })`.
 */
export function ApiErrors(...errors: ErrorSpec[]): MethodDecorator & ClassDecorator {
  const responses = errors.flatMap((spec): [number, string | undefined][] =>
    typeof spec === 'number' ? [[spec, undefined]] : Object.entries(spec).map(([s, d]) => [+s, d]),
  );
  return applyDecorators(
    ...responses.map(([status, description]) =>
      ApiResponse({ status, type: ErrorResponse, ...(description ? { description } : {}) }),
    ),
  );
}
