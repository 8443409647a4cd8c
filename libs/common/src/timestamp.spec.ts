import { timestampMsWithDateParse } from '@app/testing/timestamp-oracle';
import fc from 'fast-check';
import { toTimestamp } from './is-timestamp';
import { isValidTimestamp, timestampMs, timestampMsAt, unixSecondsToTimestamp } from './timestamp';

describe('unixSecondsToTimestamp', () => {
  it.each([
    ['0', '1970-01-01T00:00:00Z'],
    ['1735689600', '2025-01-01T00:00:00Z'],
    // The fraction as written: no float rounding (1735689600.123 * 1000 is …122.99…).
    ['1735689600.123', '2025-01-01T00:00:00.123Z'],
    ['1735689600.5', '2025-01-01T00:00:00.5Z'],
    ['1735689600.000001', '2025-01-01T00:00:00.000001Z'],
    // Beyond nanoseconds the digits are dropped (ISO timestamps carry at most nine).
    ['1735689600.1234567891', '2025-01-01T00:00:00.123456789Z'],
    ['1735689600.', '2025-01-01T00:00:00Z'],
    ['7258118399.999', '2199-12-31T23:59:59.999Z'],
  ])('%s is %s', (unix, iso) => {
    expect(unixSecondsToTimestamp(unix)).toBe(iso);
    expect(isValidTimestamp(iso)).toBe(true);
  });

  it.each([
    ['the year 2200', '7258118400'],
    ['negative', '-1'],
    ['an exponent', '1.7e9'],
    ['spaces', ' 1735689600'],
    ['empty', ''],
    ['hex', '0x10'],
    ['a fraction alone', '.5'],
    ['too many digits', '1'.repeat(13)],
    ['an ISO time', '2025-01-01T00:00:00Z'],
  ])('refuses %s', (_label, value) => {
    expect(unixSecondsToTimestamp(value)).toBeUndefined();
  });
});

describe('toTimestamp (time query parameters)', () => {
  it('reads either form as the ISO UTC instant', () => {
    expect(toTimestamp('2025-01-01T02:00:00+02:00')).toBe('2025-01-01T00:00:00Z');
    expect(toTimestamp('2025-01-01T00:00:00.25Z')).toBe('2025-01-01T00:00:00.25Z');
    expect(toTimestamp('1735689600.25')).toBe('2025-01-01T00:00:00.25Z');
    expect(toTimestamp(1735689600)).toBe('2025-01-01T00:00:00Z');
  });

  it.each(['yesterday', '2025-01-01', '2025-02-30T00:00:00Z', '-5', undefined, null, {}])(
    'has no instant for %p',
    (value) => {
      expect(toTimestamp(value)).toBeUndefined();
    },
  );
});

describe('timestampMs', () => {
  const digits = (n: number, max: number) =>
    fc.integer({ min: 0, max }).map((v) => String(v).padStart(n, '0'));
  /** Two digits, mostly up to just past their valid range, sometimes anything. */
  const field = (usual: number) =>
    fc.oneof({ arbitrary: digits(2, usual), weight: 8 }, { arbitrary: digits(2, 99), weight: 1 });
  /** Every field over its whole written range, years mostly near the contract's. */
  const written = fc
    .record({
      year: fc.oneof(
        { arbitrary: fc.integer({ min: 1960, max: 2210 }).map(String), weight: 8 },
        { arbitrary: digits(4, 9999), weight: 1 },
      ),
      month: field(12),
      day: field(31),
      hour: field(24),
      minute: field(60),
      second: field(60),
      fraction: fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,9}$/)),
      zone: fc.oneof(
        fc.constant('Z'),
        fc
          .tuple(
            fc.constantFrom('+', '-'),
            fc.oneof(digits(2, 24), digits(2, 99)),
            fc.oneof(digits(2, 60), digits(2, 99)),
          )
          .map(([sign, h, m]) => `${sign}${h}:${m}`),
      ),
    })
    .map(
      (f) =>
        `${f.year}-${f.month}-${f.day}T${f.hour}:${f.minute}:${f.second}${f.fraction}${f.zone}`,
    );

  it('gives Date.parse milliseconds, or NaN, for every written form (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof({ arbitrary: written, weight: 20 }, { arbitrary: fc.string(), weight: 1 }),
        (value) => {
          expect(timestampMs(value)).toBe(timestampMsWithDateParse(value));
        },
      ),
      { numRuns: 20000 },
    );
  }, 30_000);

  it('reads the same from the bytes of a body as from the string (property)', () => {
    // Sequences, so the day the bytes' reader kept from one reading meets the next one's.
    const text = fc.oneof(
      { arbitrary: written, weight: 20 },
      { arbitrary: written.map((v) => v.slice(0, 19) + 'Z'), weight: 5 },
      { arbitrary: fc.string(), weight: 1 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 3 }), text, fc.string({ maxLength: 3 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (parts) => {
          for (const [before, value, after] of parts) {
            const bytes = Buffer.from(before + value + after, 'latin1');
            const start = Buffer.byteLength(before, 'latin1');
            const end = start + Buffer.byteLength(value, 'latin1');
            const expected = timestampMs(bytes.toString('latin1', start, end));
            expect(timestampMsAt(bytes, start, end)).toBe(expected);
          }
        },
      ),
      { numRuns: 10000 },
    );
  }, 30_000);

  it.each([
    ['2025-01-31T23:59:59.9999Z', Date.UTC(2025, 0, 31, 23, 59, 59, 999)],
    ['2025-02-01T00:00:00.1Z', Date.UTC(2025, 1, 1, 0, 0, 0, 100)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2025-01-01T00:00:00+01:00', Date.UTC(2024, 11, 31, 23)],
  ])('reads %s from bytes', (value, ms) => {
    expect(timestampMsAt(Buffer.from(`"${value}"`), 1, value.length + 1)).toBe(ms);
  });

  it.each([
    '2025-02-29T00:00:00Z',
    '2025-01-01T00:00:00.Z',
    '2025-01-01T00:00:00.1234567890Z',
    '2025-01-01T00:00:60Z',
    '2200-01-01T00:00:00Z',
    '2025-01-01T00:00:00z',
  ])('refuses %s from bytes', (value) => {
    // After a valid reading of the same day, so a kept day cannot vouch for it.
    const day = `${value.slice(0, 10)}T00:00:00Z`;
    timestampMsAt(Buffer.from(day), 0, day.length);
    expect(timestampMsAt(Buffer.from(value), 0, value.length)).toBeNaN();
  });

  it.each([
    ['2025-01-01T00:00:00Z', Date.UTC(2025, 0, 1)],
    ['2025-01-01T00:00:00.123456789+05:30', Date.UTC(2024, 11, 31, 18, 30, 0, 123)],
    ['1969-12-31T23:30:00-01:00', Date.UTC(1970, 0, 1, 0, 30)],
    ['2024-02-29T12:00:00.5Z', Date.UTC(2024, 1, 29, 12, 0, 0, 500)],
    ['2199-12-31T23:59:59.999Z', Date.UTC(2199, 11, 31, 23, 59, 59, 999)],
  ])('reads %s', (value, ms) => expect(timestampMs(value)).toBe(ms));

  it.each([
    '2023-02-29T00:00:00Z',
    '2200-01-01T00:00:00Z',
    '1969-12-31T23:59:59Z',
    '0075-01-01T00:00:00Z',
    '2025-01-01T24:00:00Z',
    '2025-01-01T00:00:00+24:00',
    '2025-01-01 00:00:00Z',
    '2025-01-01T00:00:00',
  ])('refuses %s', (value) => expect(timestampMs(value)).toBeNaN());
});
