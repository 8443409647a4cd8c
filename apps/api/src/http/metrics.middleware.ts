import { MetricsService } from '@app/observability';
import type { NextFunction, Request, Response } from 'express';

/**
 * Observes every request's duration under its route pattern (`/devices/:device_id`),
 * never the raw URL, which would make one time series per id.
 */
export function httpMetricsMiddleware(metrics: MetricsService) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const pattern = req.route?.path as string | undefined;
      end({
        method: req.method,
        route: pattern ? `${req.baseUrl}${pattern}` : 'unmatched',
        status_code: String(res.statusCode),
      });
    });
    next();
  };
}
