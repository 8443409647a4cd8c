import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { requestId } from './logger';

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
