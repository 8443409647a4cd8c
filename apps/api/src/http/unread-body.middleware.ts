import type { NextFunction, Request, Response } from 'express';

/**
 * Answers `Connection: close` when the request's body has not all arrived yet: a request
 * refused before its body was read (401, 403, 404, 413 by Content-Length, 429). Left open,
 * the connection would make Node read and discard the rest of the body to find the next
 * request (megabytes for a refused upload); closed, the client reconnects, only after a
 * refusal. A body that arrived whole is discarded from memory and the connection kept.
 */
export function unreadBodyMiddleware() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const writeHead = res.writeHead;
    // Every response (Express' send, Nest's filter, helmet's errors) goes through writeHead.
    res.writeHead = function (this: Response, ...args: unknown[]) {
      if (!req.complete && !this.headersSent) this.setHeader('Connection', 'close');
      return writeHead.apply(this, args as Parameters<Response['writeHead']>);
    } as Response['writeHead'];
    next();
  };
}
