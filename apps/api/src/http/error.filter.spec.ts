import { AppError } from '@app/common';
import { ArgumentsHost, BadRequestException, Logger, NotFoundException } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
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

  /** What TypeORM throws for a failed query: pg's error, SQLSTATE and all, in driverError. */
  const queryFailed = (code: string, message: string) =>
    new QueryFailedError(
      'SELECT 1',
      [],
      Object.assign(new Error(message), { code, severity: 'ERROR' }),
    );

  it('answers a statement timeout with 503, Retry-After and a hint to narrow the query', () => {
    const spy = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const res = run(queryFailed('57014', 'canceling statement due to statement timeout'));
      expect(res.statusCode).toBe(503);
      expect(res.headers['Retry-After']).toBe('5');
      expect(res.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: expect.stringMatching(/took too long.*narrow it/),
      });
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    ['22008', 'date/time field value out of range: "0000-01-01T00:00:00.000Z"'],
    ['22009', 'time zone displacement out of range: "2025-01-01T00:00:00+20:00"'],
    ['22021', 'invalid byte sequence for encoding "UTF8": 0x00'],
    ['22003', 'value "2147483648" is out of range for type integer'],
  ])(
    'answers a data exception (%s) the validators missed with a 422, logged as a warning with its id',
    (code, message) => {
      const warned: unknown[] = [];
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation((entry: unknown) => {
        warned.push(entry);
      });
      const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const res = run(queryFailed(code, message));
        const body = res.body as { error_id: string; message: string };
        expect(res.statusCode).toBe(422);
        expect(res.headers['Retry-After']).toBeUndefined();
        expect(body).toEqual({
          statusCode: 422,
          error: 'Unprocessable Entity',
          message: expect.stringContaining('a value in the request could not be used'),
          details: [{ field: 'request', message }],
          error_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        });
        expect(body.message).toContain(message);
        expect(body.message).toContain(body.error_id);
        expect(warned).toEqual([
          expect.objectContaining({ error_id: body.error_id, sqlstate: code }),
        ]);
        expect(error).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
        error.mockRestore();
      }
    },
  );

  it('reads the SQLSTATE of a bare pg error too', () => {
    const spy = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const bare = Object.assign(new Error('invalid input syntax for type uuid: "x"'), {
        code: '22P02',
      });
      expect(run(bare).statusCode).toBe(422);
    } finally {
      spy.mockRestore();
    }
  });

  it('keeps other database errors a 500: they are ours', () => {
    const spy = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      expect(run(queryFailed('42P01', 'relation "nope" does not exist')).statusCode).toBe(500);
      expect(run(queryFailed('23502', 'null value in column "name"')).statusCode).toBe(500);
    } finally {
      spy.mockRestore();
    }
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
