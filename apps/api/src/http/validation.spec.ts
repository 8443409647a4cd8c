import type { ValidationError } from '@nestjs/common';
import { flattenValidationErrors } from './validation';

const error = (
  property: string,
  constraints?: Record<string, string>,
  children: ValidationError[] = [],
) => ({ property, constraints, children }) as ValidationError;

describe('flattenValidationErrors', () => {
  it('names nested fields by path and rewrites whitelist errors', () => {
    const errors = [
      error('events', undefined, [
        error('3', undefined, [error('ts', { isIso: 'ts must be ISO 8601' })]),
      ]),
      error('extra', { whitelistValidation: 'property extra should not exist' }),
    ];
    expect(flattenValidationErrors(errors)).toEqual([
      { field: 'events.3.ts', message: 'ts must be ISO 8601' },
      { field: 'extra', message: 'unknown field extra' },
    ]);
  });
});
