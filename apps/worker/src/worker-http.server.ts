import { AppConfig } from '@app/config';
import { MetricsService, ReadinessService } from '@app/observability';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { createServer, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/**
 * The worker serves no business routes: only the three probes Kubernetes and Prometheus
 * need, on WORKER_PORT (0 turns the listener off).
 */
@Injectable()
export class WorkerHttpServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WorkerHttpServer.name);
  private server?: Server;

  constructor(
    private readonly config: ConfigService<AppConfig, true>,
    private readonly readiness: ReadinessService,
    private readonly metrics: MetricsService,
  ) {}

  /** The bound port (useful when configured as an ephemeral one in tests). */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.get('worker', { infer: true }).port;
    if (port === 0) return;
    this.server = createServer((req, res) => {
      void this.handle(req.method ?? 'GET', (req.url ?? '/').split('?')[0], res);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject).listen(port, () => resolve());
    });
    this.logger.log(`worker probes listening on :${this.port}`);
  }

  private async handle(method: string, path: string, res: ServerResponse): Promise<void> {
    try {
      if (method !== 'GET')
        return send(res, 405, {
          statusCode: 405,
          error: 'Method Not Allowed',
          message: 'GET only',
        });
      if (path === '/health/live') return send(res, 200, { status: 'ok' });
      if (path === '/health/ready') {
        try {
          return send(res, 200, await this.readiness.check());
        } catch (err) {
          res.setHeader('Retry-After', '5');
          const details = (err as { response?: unknown }).response;
          return send(res, 503, {
            statusCode: 503,
            error: 'Service Unavailable',
            message: 'not ready',
            details,
          });
        }
      }
      if (path === '/metrics') {
        const { contentType, body } = await this.metrics.render();
        res.writeHead(200, { 'Content-Type': contentType });
        res.end(body);
        return;
      }
      send(res, 404, { statusCode: 404, error: 'Not Found', message: 'no such route' });
    } catch (err) {
      this.logger.error({ err }, 'probe failed');
      send(res, 500, { statusCode: 500, error: 'Internal Server Error', message: 'probe failed' });
    }
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
