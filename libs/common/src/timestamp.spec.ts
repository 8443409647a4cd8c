import { toTimestamp } from './is-timestamp';
import { isValidTimestamp, unixSecondsToTimestamp } from './timestamp';

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
