import express from 'express';
import { request as httpRequest } from 'node:http';
import { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { BodyShortcut, jsonBodyReader, RawBodyRequest } from './json-body.middleware';

/**
 * Posts `body` with `headers` to an app whose one route reads its body with the reader
 * and answers what it got (plain node:http: supertest re-encodes a Buffer sent as JSON).
 */
async function post(
  shortcut: BodyShortcut,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; json: { body?: unknown; raw?: string | null; code?: string } }> {
  const read = jsonBodyReader({ bytes: 1024, label: '1 KB' }, { requireJson: true, shortcut });
  const app = express().post('/', (req, res) => {
    read(req, res).then(
      () =>
        res.json({
          body: (req as RawBodyRequest).body ?? null,
          raw: (req as RawBodyRequest).rawBody?.toString('latin1') ?? null,
        }),
      (err: { code?: string }) => res.status(400).json({ code: err.code }),
    );
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/',
          headers: { ...headers, 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  } finally {
    server.close();
  }
}

const json = { 'content-type': 'application/json' };

describe('jsonBodyReader with a shortcut', () => {
  const taken = jest.fn<boolean, [RawBodyRequest, Buffer]>();
  beforeEach(() => taken.mockReset());

  it('leaves the body unparsed when the shortcut read its bytes', async () => {
    taken.mockReturnValue(true);
    const res = await post(taken, json, Buffer.from('{"a":1}'));
    expect(res).toEqual({ status: 200, json: { body: null, raw: '{"a":1}' } });
    expect(taken.mock.calls[0][1].toString()).toBe('{"a":1}');
  });

  it('parses as before when the shortcut declines', async () => {
    taken.mockReturnValue(false);
    const res = await post(
      taken,
      { 'content-type': 'application/json; charset=UTF-8' },
      Buffer.from('{"a":1}'),
    );
    expect(res).toEqual({ status: 200, json: { body: { a: 1 }, raw: '{"a":1}' } });
    expect(taken).toHaveBeenCalledTimes(1);
  });

  it('hands the shortcut the inflated bytes of a compressed body', async () => {
    taken.mockReturnValue(true);
    const res = await post(taken, { ...json, 'content-encoding': 'gzip' }, gzipSync('{"a":2}'));
    expect(res.status).toBe(200);
    expect(taken.mock.calls[0][1].toString()).toBe('{"a":2}');
  });

  it('never offers a body in another charset, nor one over the limit', async () => {
    taken.mockReturnValue(true);
    const utf16 = await post(
      taken,
      { 'content-type': 'application/json; charset=utf-16le' },
      Buffer.from('{"a":3}', 'utf16le'),
    );
    expect(utf16.json.body).toEqual({ a: 3 });
    const large = await post(taken, json, Buffer.from(`{"a":"${'x'.repeat(2000)}"}`));
    expect(large).toEqual({ status: 400, json: { code: 'payload_too_large' } });
    expect(taken).not.toHaveBeenCalled();
  });
});
