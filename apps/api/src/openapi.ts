import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

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
  return document;
}

/**
 * Every route that takes a JSON body answers 415 to a body not sent as JSON
 * (`JsonContentTypeInterceptor`, and `POST /telemetry` itself): said once here rather
 * than on each route.
 */
function documentNotJsonBodies(document: OpenAPIObject): void {
  for (const operations of Object.values(document.paths)) {
    for (const method of ['post', 'put', 'patch', 'delete'] as const) {
      const operation = operations[method];
      if (!operation?.requestBody || operation.responses['415']) continue;
      operation.responses['415'] = {
        description:
          'the body is not sent as JSON: send it with the header Content-Type: application/json',
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } },
        },
      };
    }
  }
}
