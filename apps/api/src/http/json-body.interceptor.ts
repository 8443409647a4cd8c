import { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Observable } from 'rxjs';
import { BodyLimit, BodyShortcut, jsonBodyReader, JsonBodyReader } from './json-body.middleware';

/**
 * Reads a route's JSON body after the guards, so a large body costs nothing until the
 * request has been counted against its rate limit and its credential checked. For routes
 * that `jsonBodyMiddleware` defers; on any other route the body was read already and this
 * does nothing. A body not sent as JSON is a 415 (after the size check: 413 first).
 * `shortcut`: the route reads some bodies from their bytes, unparsed ({@link BodyShortcut}).
 */
export class JsonBodyInterceptor implements NestInterceptor {
  private readonly read: JsonBodyReader;

  constructor(limit: BodyLimit, shortcut?: BodyShortcut) {
    this.read = jsonBodyReader(limit, { requireJson: true, shortcut });
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const http = context.switchToHttp();
    await this.read(http.getRequest<Request>(), http.getResponse<Response>());
    return next.handle();
  }
}
