import { AppConfig } from '@app/config';
import { MetricsService } from '@app/observability';
import { NestExpressApplication } from '@nestjs/platform-express';
import { ConfigService } from '@nestjs/config';
import { SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { ErrorFilter } from './http/error.filter';
import { jsonBodyMiddleware } from './http/json-body.middleware';
import { httpMetricsMiddleware } from './http/metrics.middleware';
import { createValidationPipe } from './http/validation';
import { buildOpenApiDocument } from './openapi';

/**
 * A 5,000-event batch with 64 metrics per event can run to several MiB of JSON; the
 * contract sets the ceiling at 8 MiB (Express' default of 100 kB would refuse it).
 */
export const BODY_LIMIT = '8mb';

/**
 * Everything that makes the api the api, shared by `main.ts` and the e2e tests so the
 * tests exercise the real stack. The app must be created with `bodyParser: false`.
 */
export function configureApp(app: NestExpressApplication): void {
  const config = app.get<ConfigService<AppConfig, true>>(ConfigService);
  app.useLogger(app.get(Logger));
  app.set('trust proxy', config.get('http', { infer: true }).trustProxy);
  app.disable('x-powered-by');
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
  app.use(jsonBodyMiddleware(BODY_LIMIT));
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new ErrorFilter());
  app.enableShutdownHooks();

  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
