import { AppError } from '@app/common';
import { ApiKeyAuthService } from '@app/tenancy';
import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AdminToken } from './admin-token';
import { AUTH_METADATA, AuthenticatedRequest, AuthRequirement } from './auth.types';

/**
 * The one global guard. A route must declare `@Public()`, `@AdminOnly()` or
 * `@RequireScope()`; a route that declares nothing is refused (secure by default).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyAuthService,
    private readonly admin: AdminToken,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const requirement = this.reflector.getAllAndOverride<AuthRequirement | undefined>(
      AUTH_METADATA,
      [context.getHandler(), context.getClass()],
    );
    if (!requirement) {
      this.logger.error(
        `route ${req.method} ${req.route?.path as string} declares no auth; refusing`,
      );
      throw new AppError('unauthorized', 'this route is not available');
    }
    if (requirement.kind === 'public') return true;

    if (requirement.kind === 'admin') {
      if (!this.admin.matches(req.headers.authorization)) {
        throw new AppError(
          'unauthorized',
          'a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)',
        );
      }
      req.principal = { kind: 'admin' };
      return true;
    }

    const header = req.headers['x-api-key'];
    if (header === undefined)
      throw new AppError('unauthorized', 'the X-API-Key header is required');
    const principal = await this.keys.verify(header);
    if (!principal) throw new AppError('unauthorized', 'the API key is invalid or revoked');
    req.principal = { kind: 'api_key', ...principal };
    if (!principal.scopes.includes(requirement.scope)) {
      throw new AppError('forbidden', `this API key lacks the "${requirement.scope}" scope`);
    }
    const projectId = req.params?.project_id as string | undefined;
    if (projectId !== undefined && projectId.toLowerCase() !== principal.projectId) {
      throw new AppError('not_found', 'project not found');
    }
    return true;
  }
}
