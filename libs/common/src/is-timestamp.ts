import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { ValidateBy, ValidationOptions } from 'class-validator';
import { isValidTimestamp, toUtcTimestamp } from './timestamp';

/**
 * ISO 8601 with a zone, as everywhere in the contract. An accepted value reaches the
 * handler in UTC (`Z`, its fraction kept): RFC 3339 allows offsets up to ±23:59, but
 * PostgreSQL refuses ±16:00 and beyond (22009) when it reads the value. A
 * value that is not a timestamp is left as sent, for the validator to name it.
 */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }: { value: unknown }) =>
      typeof value === 'string' && isValidTimestamp(value) ? toUtcTimestamp(value) : value,
    ),
    ValidateBy(
      {
        name: 'isTimestamp',
        validator: {
          validate: (value: unknown) => typeof value === 'string' && isValidTimestamp(value),
          defaultMessage: (args) =>
            `${args?.property} must be an ISO 8601 timestamp with a zone, e.g. 2025-01-01T00:00:00Z`,
        },
      },
      options,
    ),
  );
}
