import { ProjectId } from '@app/common';
import { ApiKeyPrincipal, ApiKeyScope } from '@app/tenancy';
import {
  applyDecorators,
  createParamDecorator,
  ExecutionContext,
  SetMetadata,
} from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity } from '@nestjs/swagger';
import { ApiErrors } from '../http/api-errors.decorator';
import { AUTH_METADATA, AuthenticatedRequest, AuthRequirement } from './auth.types';

/** No credential needed (health, metrics, docs). */
export const Public = (): MethodDecorator & ClassDecorator =>
  SetMetadata(AUTH_METADATA, { kind: 'public' } satisfies AuthRequirement);

/** `Authorization: Bearer <ADMIN_TOKEN>`. */
export const AdminOnly = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(AUTH_METADATA, { kind: 'admin' } satisfies AuthRequirement),
    ApiBearerAuth('admin'),
    ApiErrors({ 401: 'missing or invalid admin token' }),
  );

/**
 * `X-API-Key` carrying `scope`. On routes with `:project_id` the key's project must be
 * that project, or the answer is 404 (never 403, which would confirm it exists).
 */
export const RequireScope = (scope: ApiKeyScope): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(AUTH_METADATA, { kind: 'api_key', scope } satisfies AuthRequirement),
    ApiSecurity('api-key'),
    ApiErrors({
      401: 'missing, invalid or revoked API key',
      403: `the API key lacks the "${scope}" scope`,
    }),
  );

/** The API key `AuthGuard` let the request in with; `decorator` names the misuse. */
function apiKeyOf(ctx: ExecutionContext, decorator: string): ApiKeyPrincipal {
  const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
  if (req.principal?.kind !== 'api_key')
    throw new Error(`${decorator} used on a route without API key auth`);
  return req.principal;
}

/** The project the presented API key belongs to, as `AuthGuard` checked it. */
export const CurrentProject = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): ProjectId => apiKeyOf(ctx, 'CurrentProject').projectId,
);

/** The API key a request presented, as `AuthGuard` checked it: its id, project and scopes. */
export const CurrentApiKey = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): ApiKeyPrincipal => apiKeyOf(ctx, 'CurrentApiKey'),
);
