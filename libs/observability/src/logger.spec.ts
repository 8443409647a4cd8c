import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino, { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import { loggerParams, requestId, resolveLogFormat } from './logger';

function exchange(header?: string) {
  const req = new IncomingMessage(new Socket());
  if (header !== undefined) req.headers['x-request-id'] = header;
  const res = new ServerResponse(req);
  return { id: requestId(req, res), echoed: res.getHeader('X-Request-Id') };
}

describe('requestId', () => {
  it('keeps a sane caller id and echoes it', () => {
    expect(exchange('abc-123:x.y_z')).toEqual({ id: 'abc-123:x.y_z', echoed: 'abc-123:x.y_z' });
  });

  it.each([
    ['missing', undefined],
    ['spaces', 'a b'],
    ['too long', 'a'.repeat(129)],
    ['newline', 'a\nb'],
  ])('replaces a %s id with a fresh uuid', (_label, header) => {
    const { id, echoed } = exchange(header);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(echoed).toBe(id);
  });
});

describe('log format', () => {
  it.each([
    ['auto', 'development', false, 'pretty'],
    ['auto', 'development', true, 'pretty'],
    ['auto', 'production', true, 'json'],
    ['auto', 'production', false, 'json'],
    ['auto', 'test', true, 'json'],
    ['auto', undefined, true, 'pretty'],
    ['auto', undefined, false, 'json'],
    ['json', 'development', true, 'json'],
    ['pretty', 'production', false, 'pretty'],
    ['pretty', 'test', false, 'pretty'],
  ] as const)('LOG_FORMAT=%s, NODE_ENV=%s, tty %s: %s', (setting, env, tty, format) => {
    expect(resolveLogFormat(setting, env, tty)).toBe(format);
  });
});

describe('logger output', () => {
  /** A pino logger built from loggerParams' options and stream, writing into `lines`. */
  function logger(format: 'json' | 'pretty') {
    let text = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        text += chunk.toString();
        done();
      },
    });
    const { pinoHttp } = loggerParams('info', format, {}, sink);
    const [options, stream] = pinoHttp as [Options, DestinationStream];
    const log = pino(
      { level: options.level, redact: options.redact as pino.LoggerOptions['redact'] },
      stream,
    );
    return { log, lines: () => text.trim().split('\n') };
  }

  it('pretty: one readable line per entry, context and message first, ids after, no colours', async () => {
    const { log, lines } = logger('pretty');
    log.warn(
      { context: 'DeliveryService', deliveryId: 'd-1', webhookId: 'w-1', attempts: 8 },
      'delivery failed for good',
    );
    log.info({ secret: 'whsec_x', token: 't' }, 'redacted');
    await new Promise((r) => setImmediate(r));
    const [line, redacted] = lines();
    expect(line).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: \[DeliveryService\] delivery failed for good \{"deliveryId":"d-1","webhookId":"w-1","attempts":8\}$/,
    );
    expect(redacted).toContain('"secret":"[redacted]","token":"[redacted]"');
    expect(lines().join('\n')).not.toContain('\u001b[');
  });

  it('json: one JSON object per line, as before', async () => {
    const { log, lines } = logger('json');
    log.info({ context: 'EvaluationService', alertId: 'a-1' }, 'alert opened');
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(lines()[0])).toMatchObject({
      level: 30,
      context: 'EvaluationService',
      alertId: 'a-1',
      msg: 'alert opened',
    });
  });
});
