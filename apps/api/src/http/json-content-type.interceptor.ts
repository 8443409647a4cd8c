import { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import { Observable } from 'rxjs';
import { notJsonBodyError } from './json-body.middleware';

/**
 * A route that takes a JSON body (`@Body()`) refuses a body that is not declared JSON
 * with a 415 naming `Content-Type: application/json`: the body parser leaves such a body
 * unread, and the route would otherwise validate an absent body ("name is required") or,
 * where every field is optional, silently ignore what was sent. Routes without a body
 * ignore one, as before, and so do unknown routes (404). Routes in `readsOwnBody` check
 * this themselves, after their size limit ({@link JsonBodyInterceptor}).
 */
export class JsonContentTypeInterceptor implements NestInterceptor {
  private readonly takesBody = new WeakMap<object, boolean>();

  constructor(private readonly readsOwnBody: (req: Request) => boolean) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'http') {
      const req = context.switchToHttp().getRequest<Request>();
      if (!this.readsOwnBody(req) && this.routeTakesBody(context)) {
        const refusal = notJsonBodyError(req);
        if (refusal) throw refusal;
      }
    }
    return next.handle();
  }

  /** Whether the handler has a `@Body()` parameter (Nest's own route metadata). */
  private routeTakesBody(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let known = this.takesBody.get(handler);
    if (known === undefined) {
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ??
        {}) as Record<string, unknown>;
      known = Object.keys(args).some((key) => Number(key.split(':')[0]) === RouteParamtypes.BODY);
      this.takesBody.set(handler, known);
    }
    return known;
  }
}
