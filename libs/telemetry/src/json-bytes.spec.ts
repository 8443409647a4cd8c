import fc from 'fast-check';
import { numberAt } from './json-bytes';

describe('numberAt', () => {
  const literal = fc.oneof(
    { arbitrary: fc.double().map(String), weight: 4 },
    { arbitrary: fc.integer().map(String), weight: 2 },
    // Decimals as devices write them: up to the exact path's 15 digits and past it.
    { arbitrary: fc.stringMatching(/^-?(0|[1-9]\d{0,17})(\.\d{1,19})?$/), weight: 8 },
    { arbitrary: fc.stringMatching(/^-?\d{1,3}(\.\d{1,3})?[eE][+-]?\d{1,3}$/), weight: 2 },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  );

  it('reads a literal as Number reads it, wherever it sits in the body (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 4 }), literal, fc.string({ maxLength: 4 }), (a, s, z) => {
        const bytes = Buffer.from(a + s + z, 'latin1');
        const start = Buffer.byteLength(a, 'latin1');
        const end = start + Buffer.byteLength(s, 'latin1');
        expect(numberAt(bytes, start, end)).toBe(Number(bytes.toString('latin1', start, end)));
      }),
      { numRuns: 20000 },
    );
  });

  it.each([
    ['21.3', 21.3],
    ['0.1', 0.1],
    ['-0', -0],
    ['123456789012345', 123456789012345],
    // 16 digits and more: past what the digits hold exactly, read by Number.
    ['9007199254740993', 9007199254740992],
    ['0.30000000000000004', 0.30000000000000004],
    ['1e309', Infinity],
    ['-1.5E-3', -0.0015],
  ])('reads %s', (text, value) => expect(numberAt(Buffer.from(text), 0, text.length)).toBe(value));
});
