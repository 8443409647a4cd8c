import { AppError } from './app-error';
import {
  createdCursor,
  decodeCursor,
  decodeTimeCursor,
  decodeTimeIdCursor,
  encodeCursor,
  toPage,
} from './cursor';

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

  describe('time cursors', () => {
    const thrown = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error('no error thrown');
    };
    const id = '0b7e2a3c-1d4f-4a5b-8c6d-7e8f9a0b1c2d';

    it('read back what a row wrote', () => {
      const row = { createdAt: new Date('2025-03-01T12:34:56.789Z'), id };
      expect(decodeTimeIdCursor(encodeCursor(createdCursor(row)))).toEqual([
        '2025-03-01T12:34:56.789Z',
        id,
      ]);
      expect(decodeTimeCursor(encodeCursor(['1970-01-01T00:00:00.000Z']))).toBe(
        '1970-01-01T00:00:00.000Z',
      );
      expect(decodeTimeCursor(encodeCursor(['9999-12-31T23:59:59.999Z']))).toBe(
        '9999-12-31T23:59:59.999Z',
      );
    });

    it.each([
      // Date.parse takes these, PostgreSQL does not (22008).
      ['a day the month lacks', '2024-02-31T00:00:00.000Z'],
      ['February 29th of a common year', '2023-02-29T00:00:00.000Z'],
      ['year 0000', '0000-01-01T00:00:00.000Z'],
      // Date.parse takes these too; no row of ours has them.
      ['24:00', '2024-02-29T24:00:00.000Z'],
      ['before 1970', '1969-12-31T23:59:59.999Z'],
      ['month 13', '2024-13-01T00:00:00.000Z'],
      ['second 60', '2024-01-01T00:00:60.000Z'],
      ['no milliseconds', '2024-01-01T00:00:00Z'],
      ['an offset', '2024-01-01T00:00:00.000+01:00'],
      ['a six-digit year', '+002024-01-01T00:00:00.000Z'],
      ['a number', 1704067200000],
    ])('refuse %s with a 422 naming cursor', (_name, ts) => {
      const refusal = { code: 'validation_failed', details: [{ field: 'cursor' }] };
      expect(thrown(() => decodeTimeCursor(encodeCursor([ts])))).toMatchObject(refusal);
      expect(thrown(() => decodeTimeIdCursor(encodeCursor([ts, id])))).toMatchObject(refusal);
    });

    it('refuse an id that is not a UUID', () => {
      expect(() => decodeTimeIdCursor(encodeCursor(['2025-01-01T00:00:00.000Z', 'x']))).toThrow(
        AppError,
      );
    });
  });
});
