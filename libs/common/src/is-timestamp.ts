import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ValidateBy, ValidationOptions } from 'class-validator';
import { isValidTimestamp, toUtcTimestamp, unixSecondsToTimestamp } from './timestamp';

/** What every time parameter of the api says when it is not a time. */
export const timeParameterMessage = (property: string): string =>
  `${property} must be a time: ISO 8601 with a zone (e.g. 2025-01-01T00:00:00Z) or unix seconds (e.g. 1735689600), years 1970-2199`;

/**
 * A time query parameter as the contract takes it, one format across the api: ISO 8601
 * with a zone, or unix seconds (a fraction allowed). An accepted value reaches the handler
 * as an ISO 8601 UTC string (`Z`, its fraction kept): unix seconds are converted, and so
 * are offsets, since RFC 3339 allows up to ±23:59 but PostgreSQL refuses ±16:00 and beyond
 * (22009) when it reads the value. A value that is neither is left as sent, for the
 * validator to name it.
 */
export function IsTimestamp(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }: { value: unknown }) => toTimestamp(value) ?? value),
    ValidateBy(
      {
        name: 'isTimestamp',
        validator: {
          validate: (value: unknown) => typeof value === 'string' && isValidTimestamp(value),
          defaultMessage: (args) => timeParameterMessage(args?.property ?? 'time'),
        },
      },
      options,
    ),
  );
}

/** The ISO 8601 UTC timestamp `value` names in either form, or undefined. */
export function toTimestamp(value: unknown): string | undefined {
  if (typeof value === 'number') value = String(value);
  if (typeof value !== 'string') return undefined;
  if (isValidTimestamp(value)) return toUtcTimestamp(value);
  return unixSecondsToTimestamp(value);
}

/** The OpenAPI side of a time parameter: either form, documented once. */
export function ApiTimeProperty(opts: {
  required: boolean;
  description: string;
  example: string;
}): PropertyDecorator {
  const property = opts.required ? ApiProperty : ApiPropertyOptional;
  return property({
    description: `${opts.description}. ISO 8601 with a zone, or unix seconds (fractions allowed); years 1970-2199`,
    example: opts.example,
    oneOf: [
      { type: 'string', format: 'date-time' },
      { type: 'string', pattern: '^\\d+(\\.\\d*)?$', description: 'unix seconds' },
    ],
  });
}
