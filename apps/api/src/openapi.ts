import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Telemetry platform API')
    .setDescription(
      'IoT telemetry ingestion and alerting. Admin routes take `Authorization: Bearer <ADMIN_TOKEN>`; ' +
        'project routes take `X-API-Key: <prefix>.<secret>` with the scope each route names. ' +
        'Errors: `{statusCode, error, message, details?}`.',
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin')
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'project API key' },
      'api-key',
    )
    .build();
  return SwaggerModule.createDocument(app, config, {
    operationIdFactory: (controllerKey, methodKey) =>
      `${controllerKey.replace(/Controller$/, '')}_${methodKey}`,
  });
}
