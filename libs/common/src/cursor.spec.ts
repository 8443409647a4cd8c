import { AppError } from './app-error';
import { decodeCursor, encodeCursor, toPage } from './cursor';

describe('cursor', () => {
  it('round-trips values', () => {
    const c = encodeCursor(['2025-01-01T00:00:00.000Z', 'abc', 3]);
    expect(decodeCursor(c, 3)).toEqual(['2025-01-01T00:00:00.000Z', 'abc', 3]);
  });

  it.each([
    ['not base64 json', '%%%'],
    ['wrong arity', encodeCursor(['a'])],
    ['object', Buffer.from('{"a":1}').toString('base64url')],
    ['nested', encodeCursor([['a'] as unknown as string, 'b'])],
    ['too long', 'a'.repeat(600)],
  ])('rejects %s with a validation error', (_name, cursor) => {
    expect(() => decodeCursor(cursor, 2)).toThrow(AppError);
  });

  it('pages with a next cursor only when more rows exist', () => {
    const rows = [1, 2, 3];
    expect(
      toPage(
        rows,
        2,
        (r) => r * 10,
        (r) => [r],
      ),
    ).toEqual({
      items: [10, 20],
      next_cursor: encodeCursor([2]),
    });
    expect(
      toPage(
        rows,
        3,
        (r) => r,
        (r) => [r],
      ).next_cursor,
    ).toBeNull();
  });
});
