import { Controller, Get, Req, Res } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
// The version of the build: package.json has no path alias, and the bundle carries it.
// eslint-disable-next-line no-restricted-imports
import packageJson from '../../../../package.json';
import { Public } from '../auth/auth.decorators';
import { CONSOLE_PATH } from '../console/serve-console';

export class RootLinks {
  @ApiProperty({ example: '/docs', description: 'the API reference (Swagger UI)' }) docs: string;
  @ApiProperty({ example: '/docs-json', description: 'the OpenAPI document' }) openapi: string;
  @ApiProperty({ example: '/health/live', description: 'liveness probe' }) health_live: string;
  @ApiProperty({ example: '/health/ready', description: 'readiness probe (PostgreSQL, Redis)' })
  health_ready: string;
  @ApiProperty({ example: '/metrics', description: 'Prometheus metrics' }) metrics: string;
  @ApiProperty({
    example: '/console/',
    description: 'the web console (sign in with a project API key)',
  })
  console: string;
}

export class RootResponse {
  @ApiProperty({ example: 'telemetry-platform' }) name: string;
  @ApiProperty({ example: 'IoT telemetry ingestion and alerting backend (NestJS api + worker)' })
  description: string;
  @ApiProperty({ example: '0.1.0', description: 'the version of the running api' })
  version: string;
  @ApiProperty({ type: RootLinks }) links: RootLinks;
}

const ROOT: RootResponse = {
  name: packageJson.name,
  description: packageJson.description,
  version: packageJson.version,
  links: {
    docs: '/docs',
    openapi: '/docs-json',
    health_live: '/health/live',
    health_ready: '/health/ready',
    metrics: '/metrics',
    console: CONSOLE_PATH + '/',
  },
};

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const LINK_TEXT: Record<keyof RootLinks, string> = {
  console: 'web console',
  docs: 'API reference',
  openapi: 'OpenAPI document',
  health_live: 'liveness',
  health_ready: 'readiness',
  metrics: 'metrics',
};

/** The same as the JSON, for a person with a browser. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(ROOT.name)} ${escapeHtml(ROOT.version)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style>
</head>
<body>
<h1>${escapeHtml(ROOT.name)} <small>${escapeHtml(ROOT.version)}</small></h1>
<p>${escapeHtml(ROOT.description)}</p>
<ul>
${(Object.keys(LINK_TEXT) as Array<keyof RootLinks>)
  .map(
    (k) =>
      `<li><a href="${escapeHtml(ROOT.links[k])}">${LINK_TEXT[k]}</a> <code>${escapeHtml(ROOT.links[k])}</code></li>`,
  )
  .join('\n')}
</ul>
<p>Project routes take <code>X-API-Key</code>; admin routes take <code>Authorization: Bearer &lt;ADMIN_TOKEN&gt;</code>. Send bodies as JSON with <code>Content-Type: application/json</code>.</p>
</body>
</html>
`;

/** `GET /`: what answers here and where to go next, so the first request is not a 404. */
@ApiTags('operations')
@Public()
@Controller()
export class RootController {
  @Get()
  @ApiOperation({
    summary: 'The service, its version and links to its documentation and probes',
    description:
      'JSON, unless the client prefers text/html (a browser): then a small page with the same links. No credentials needed.',
  })
  @ApiExtraModels(RootResponse)
  @ApiOkResponse({
    description: 'the service and its links',
    content: {
      'application/json': { schema: { $ref: getSchemaPath(RootResponse) } },
      'text/html': { schema: { type: 'string' } },
    },
  })
  root(@Req() req: Request, @Res() res: Response): void {
    res.vary('Accept');
    if (req.accepts(['application/json', 'text/html']) === 'text/html') {
      res.type('html').send(PAGE);
    } else {
      res.json(ROOT);
    }
  }
}
