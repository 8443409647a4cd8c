import { Controller, Delete, Get, HttpCode, Logger, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { DeliveryResponse, toDeliveryResponse } from './delivery';
import { DeliveryStoreService, InvalidSecretError } from './delivery-store.service';
import { PAGE_CSP, PageView, renderDeliveriesPage } from './deliveries-page';
import { planResponse } from './response-plan';

/**
 * Every route of the receiver. The specific ones come first: Nest registers routes in
 * declaration order, and the last one takes a POST on any other path as a delivery.
 */
@Controller()
export class ReceiverController {
  private readonly logger = new Logger(ReceiverController.name);

  constructor(private readonly store: DeliveryStoreService) {}

  @Get('health')
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get()
  page(@Req() req: Request, @Res() res: Response): void {
    this.sendPage(req, res, 200, { refresh: req.query.refresh !== 'off' });
  }

  @Get('deliveries.json')
  list(): DeliveryResponse[] {
    return this.store.list().map(toDeliveryResponse);
  }

  @Delete('deliveries')
  @HttpCode(204)
  clear(): void {
    this.store.clear();
  }

  /** The page's form (application/x-www-form-urlencoded: `secret`, optional `refresh`). */
  @Post('_secrets')
  addSecrets(@Req() req: Request, @Res() res: Response): void {
    const form = new URLSearchParams(rawBodyOf(req).toString('utf8'));
    const refresh = form.get('refresh') !== 'off';
    try {
      const added = this.store.addSecrets(form.get('secret') ?? '');
      this.logger.log(`${added} secret(s) added; stored deliveries verified again`);
    } catch (err) {
      if (!(err instanceof InvalidSecretError)) throw err;
      return this.sendPage(req, res, 400, { refresh: false, error: `Not added: ${err.message}.` });
    }
    res.redirect(303, refresh ? '/' : '/?refresh=off');
  }

  /** A delivery: recorded first (so the page shows it while a delayed answer waits). */
  @Post('{*path}')
  receive(@Req() req: Request, @Res() res: Response): void {
    const queryStart = req.originalUrl.indexOf('?');
    const query = queryStart === -1 ? '' : req.originalUrl.slice(queryStart + 1);
    const plan = planResponse(req.path, new URLSearchParams(query));
    const delivery = this.store.record({
      receivedAt: new Date(),
      path: req.path,
      query,
      headers: {
        'webhook-id': header(req, 'webhook-id'),
        'webhook-timestamp': header(req, 'webhook-timestamp'),
        'webhook-signature': header(req, 'webhook-signature'),
        'webhook-key-ids': header(req, 'webhook-key-ids'),
        'content-type': header(req, 'content-type'),
      },
      rawBody: rawBodyOf(req),
      status: plan.status,
      delayMs: plan.delayMs,
    });
    this.logger.log(
      {
        delivery: delivery.id,
        webhookId: delivery.headers['webhook-id'],
        type: delivery.type,
        verification: delivery.verification,
        status: plan.status,
      },
      'delivery received',
    );
    if (plan.error) {
      res.status(400).type('text/plain').send(`${plan.error}\n`);
      return;
    }
    const answer = (): void => {
      if (res.writableEnded || res.destroyed) return; // the sender gave up waiting
      res.status(plan.status);
      if (plan.status < 200 || plan.status === 204 || plan.status === 304) res.end();
      else res.type('text/plain').send(`${plan.status} ${STATUS_CODES[plan.status] ?? ''}\n`);
    };
    // unref: a pending delay must not keep the process alive after SIGTERM.
    if (plan.delayMs > 0) setTimeout(answer, plan.delayMs).unref();
    else answer();
  }

  private sendPage(
    req: Request,
    res: Response,
    status: number,
    view: Pick<PageView, 'refresh' | 'error'>,
  ): void {
    const page = renderDeliveriesPage({
      ...view,
      deliveries: this.store.list(),
      secrets: this.store.secrets(),
      baseUrl: `${req.protocol}://${req.get('host') ?? 'localhost'}`,
    });
    res
      .status(status)
      .set({
        'Content-Security-Policy': PAGE_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Cache-Control': 'no-store',
      })
      .type('html')
      .send(page);
  }
}

/** The body as received (the raw-body middleware leaves a Buffer, or nothing). */
function rawBodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(' ') : value;
}
