import { AppError } from '@app/common';
import { ArgumentsHost, BadRequestException, Logger, NotFoundException } from '@nestjs/common';
import { ErrorFilter } from './error.filter';

function run(exception: unknown) {
  const res = {
    statusCode: 0,
    body: undefined as unknown,
    headers: {} as Record<string, string>,
    headersSent: false,
    setHeader(name: string, value: string) {
      this.headers[name] = value;
    },
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    json(body: unknown) {
      this.body = body;
    },
    end() {},
  };
  const host = {
    switchToHttp: () => ({
      getResponse: () => res,
      getRequest: () => ({ method: 'GET', url: '/x' }),
    }),
  } as unknown as ArgumentsHost;
  new ErrorFilter().catch(exception, host);
  return res;
}

describe('ErrorFilter', () => {
  it.each([
    ['bad_request', 400, 'Bad Request'],
    ['unauthorized', 401, 'Unauthorized'],
    ['forbidden', 403, 'Forbidden'],
    ['not_found', 404, 'Not Found'],
    ['conflict', 409, 'Conflict'],
    ['payload_too_large', 413, 'Payload Too Large'],
    ['unsupported_media_type', 415, 'Unsupported Media Type'],
    ['validation_failed', 422, 'Unprocessable Entity'],
    ['rate_limited', 429, 'Too Many Requests'],
    ['unavailable', 503, 'Service Unavailable'],
  ] as const)('maps %s to %i', (code, status, reason) => {
    const res = run(new AppError(code, 'boom'));
    expect(res.statusCode).toBe(status);
    expect(res.body).toEqual({ statusCode: status, error: reason, message: 'boom' });
  });

  it('sends Retry-After on 429 and 503', () => {
    expect(run(new AppError('unavailable', 'down', undefined, 7)).headers['Retry-After']).toBe('7');
    expect(run(new AppError('rate_limited', 'slow down')).headers['Retry-After']).toBe('1');
    expect(run(new AppError('conflict', 'x')).headers['Retry-After']).toBeUndefined();
  });

  it('keeps validation details', () => {
    const details = [{ field: 'name', message: 'name must be a string' }];
    expect(run(new AppError('validation_failed', 'bad', details)).body).toMatchObject({ details });
  });

  it('shapes Nest HTTP exceptions', () => {
    expect(run(new BadRequestException('nope')).body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'nope',
    });
    expect(run(new NotFoundException('Cannot GET /x')).body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'no such route',
    });
  });

  it.each([
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    [
      'an admin shutdown',
      Object.assign(new Error('terminating connection'), { driverError: { code: '57P01' } }),
    ],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
  ])('answers 503 with Retry-After for %s', (_label, err) => {
    const res = run(err);
    expect(res.statusCode).toBe(503);
    expect(res.headers['Retry-After']).toBe('5');
  });

  it('turns anything else into a 500 with an error id that is also logged', () => {
    const logged: unknown[] = [];
    const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation((entry: unknown) => {
      logged.push(entry);
    });
    try {
      const res = run(new TypeError('secret internals'));
      const body = res.body as { statusCode: number; error_id: string; message: string };
      expect(res.statusCode).toBe(500);
      expect(body.error_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.message).toContain(body.error_id);
      expect(body.message).not.toContain('secret internals');
      expect(logged).toEqual([expect.objectContaining({ error_id: body.error_id })]);
    } finally {
      spy.mockRestore();
    }
  });
});
