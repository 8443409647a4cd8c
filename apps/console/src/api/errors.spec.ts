import { ApiError, fieldErrors, unwrap } from './errors';

const response = (status: number, headers: Record<string, string> = {}) =>
  ({
    ok: status < 400,
    status,
    statusText: 'X',
    headers: new Map(Object.entries(headers)),
  }) as unknown as Response;

describe('unwrap', () => {
  it('gives the data of a success', async () => {
    await expect(
      unwrap(Promise.resolve({ data: { a: 1 }, response: response(200) })),
    ).resolves.toEqual({ a: 1 });
  });

  it("throws the API's message, with its details and when to try again", async () => {
    const err = await unwrap(
      Promise.resolve({
        error: { statusCode: 429, error: 'Too Many Requests', message: 'slow down', details: [] },
        response: response(429, { 'Retry-After': '7' }),
      }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(429);
    expect((err as ApiError).message).toBe('slow down (try again in 7 s)');
  });

  it('says the api cannot be reached when the request fails', async () => {
    await expect(unwrap(Promise.reject(new TypeError('Failed to fetch')))).rejects.toMatchObject({
      status: 0,
      message: expect.stringContaining('cannot be reached'),
    });
  });

  it('names the status when the body is not the API’s error shape', async () => {
    await expect(
      unwrap(Promise.resolve({ error: 'gateway', response: response(502) })),
    ).rejects.toMatchObject({
      status: 502,
      message: 'The api answered 502 X',
    });
  });
});

it('fieldErrors groups the details by top-level field', () => {
  const err = new ApiError(422, 'invalid', [
    { field: 'required_k', message: 'must be at most window_n' },
    { field: 'required_k', message: 'must be a whole number' },
    { field: 'events.3.ts', message: 'bad ts' },
  ]);
  expect(fieldErrors(err)).toEqual({
    required_k: 'must be at most window_n; must be a whole number',
    events: 'bad ts',
  });
  expect(fieldErrors(new Error('x'))).toEqual({});
});
