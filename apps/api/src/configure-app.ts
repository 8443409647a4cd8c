import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { NestExpressApplication } from '@nestjs/platform-express';
import { ConfigService } from '@nestjs/config';
import { SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import type { Request } from 'express';
import type { Server } from 'node:http';
import { serveConsole } from './console/serve-console';
import { ErrorFilter } from './http/error.filter';
import { DEFAULT_BODY_LIMIT, jsonBodyMiddleware } from './http/json-body.middleware';
import { JsonContentTypeInterceptor } from './http/json-content-type.interceptor';
import { httpMetricsMiddleware } from './http/metrics.middleware';
import { unreadBodyMiddleware } from './http/unread-body.middleware';
import { createValidationPipe } from './http/validation';
import { buildOpenApiDocument } from './openapi';

/**
 * POST /telemetry reads its own (up to 8 MiB) body after the guards (TelemetryController).
 * Matched the way Express routes it: case-insensitive, with an optional trailing slash.
 */
const readsOwnBody = (req: Request): boolean =>
  req.method === 'POST' && /^\/telemetry\/?$/i.test(req.path);

/**
 * Node enforces headersTimeout and requestTimeout only when it sweeps its connections,
 * every 30 s by default: a slow client would overstay the timeouts by up to that much.
 */
const CONNECTIONS_CHECK_MS = 1000;

/**
 * Everything that makes the api the api, shared by `main.ts` and the e2e tests so the
 * tests exercise the real stack. The app must be created with `bodyParser: false`.
 */
export function configureApp(app: NestExpressApplication): void {
  const config = app.get<ConfigService<AppConfig, true>>(ConfigService);
  app.useLogger(app.get(Logger));
  const http = config.get('http', { infer: true });
  app.set('trust proxy', http.trustProxy);
  app.disable('x-powered-by');
  // A client sending its headers or body slowly holds a connection and a parser: end it.
  const server = app.getHttpServer() as Server;
  server.requestTimeout = http.requestTimeoutMs;
  // Node refuses headersTimeout > requestTimeout at createServer, but not when set later.
  server.headersTimeout = Math.min(http.headersTimeoutMs, http.requestTimeoutMs);
  // Read by Node when the server starts listening.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    CONNECTIONS_CHECK_MS;
  app.use(unreadBodyMiddleware());
  app.use(httpMetricsMiddleware(app.get(MetricsService)));
  app.use(
    helmet({
      // Swagger UI at /docs needs inline scripts and styles.
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'", "'unsafe-inline'"],
          styleSrc: ["'self'", "'unsafe-inline'"],
          imgSrc: ["'self'", 'data:'],
        },
      },
    }),
  );
  serveConsole(app, http.consoleDir);
  app.use(jsonBodyMiddleware(DEFAULT_BODY_LIMIT, readsOwnBody));
  app.useGlobalInterceptors(new JsonContentTypeInterceptor(readsOwnBody));
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ErrorFilter());
  app.enableShutdownHooks();

  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
