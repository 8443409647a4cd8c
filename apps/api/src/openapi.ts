import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { OperationObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Telemetry platform API')
    .setDescription(
      'IoT telemetry ingestion and alerting. Admin routes take `Authorization: Bearer <ADMIN_TOKEN>`; ' +
        'project routes take `X-API-Key: <prefix>.<secret>` with the scope each route names. ' +
        'Bodies are JSON sent with `Content-Type: application/json`. ' +
        'Time parameters take ISO 8601 with a zone or unix seconds. ' +
        'Errors: `{statusCode, error, message, details?}`.',
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin')
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'project API key' },
      'api-key',
    )
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (controllerKey, methodKey) =>
      `${controllerKey.replace(/Controller$/, '')}_${methodKey}`,
  });
  documentNotJsonBodies(document);
  documentCommonErrors(document);
  return document;
}

const ERROR_BODY = {
  'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } },
};

/**
 * Answers every route of a kind can give whatever the route, said once here rather than
 * on each route: a body that is no JSON or too large, on every method with a body; the
 * rate limits and a dependency down, on every authenticated route.
 */
function documentCommonErrors(document: OpenAPIObject): void {
  type Applies = (method: string, secured: boolean, operation: OperationObject) => boolean;
  const common: [string, string, Applies][] = [
    [
      '422',
      'a query parameter is not valid (`details` names it)',
      (_m, _s, operation) =>
        Boolean(operation.parameters?.some((p) => 'in' in p && p.in === 'query')),
    ],
    ['400', 'the request body is not valid JSON', (m) => m !== 'get' && m !== 'delete'],
    [
      '413',
      'the request body is larger than the limit (100 KB; 8 MiB for POST /telemetry)',
      (m) => m !== 'get' && m !== 'delete',
    ],
    [
      '429',
      'a rate limit or a backlog bound is reached; retry after the Retry-After header',
      (_m, secured) => secured,
    ],
    [
      '503',
      'PostgreSQL or Redis is unavailable; retry after the Retry-After header',
      (_m, secured) => secured,
    ],
  ];
  for (const operations of Object.values(document.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const operation = operations[method];
      if (!operation) continue;
      const secured = Boolean(operation.security?.length);
      for (const [status, description, applies] of common) {
        if (operation.responses[status] || !applies(method, secured, operation)) continue;
        operation.responses[status] = { description, content: ERROR_BODY };
      }
    }
  }
}

/**
 * Every route that takes a JSON body answers 415 to a body not sent as JSON
 * (`JsonContentTypeInterceptor`, and `POST /telemetry` itself), and every POST, PUT or
 * PATCH to a body in a charset or encoding the parser cannot read: said once here rather
 * than on each route.
 */
function documentNotJsonBodies(document: OpenAPIObject): void {
  for (const operations of Object.values(document.paths)) {
    for (const method of ['post', 'put', 'patch'] as const) {
      const operation = operations[method];
      if (!operation || operation.responses['415']) continue;
      operation.responses['415'] = {
        description: operation.requestBody
          ? 'the body is not sent as JSON: send it with the header Content-Type: application/json'
          : 'the route takes no body, but the one sent is in a charset or Content-Encoding it cannot read',
        content: ERROR_BODY,
      };
    }
  }
}
