import type { ApiKeyPrincipal, ApiKeyScope } from '@app/tenancy';
import type { Request } from 'express';

/** Metadata key of the auth requirement a route declares (`@Public()`, `@AdminOnly()`, …). */
export const AUTH_METADATA = 'telemetry:auth';
export type AuthRequirement =
  { kind: 'public' } | { kind: 'admin' } | { kind: 'api_key'; scope: ApiKeyScope };

export type Principal = { kind: 'admin' } | ({ kind: 'api_key' } & ApiKeyPrincipal);
/** A request once `AuthGuard` let it in: who presented what. */
export type AuthenticatedRequest = Request & { principal?: Principal };
