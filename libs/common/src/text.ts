import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsString, Length, Matches, ValidateBy, ValidationOptions } from 'class-validator';

/**
 * Strings PostgreSQL cannot store, though JSON.parse accepts them: NUL (refused in text
 * and jsonb, 22021), and UTF-16 surrogates that don't pair up (stored as U+FFFD).
 */
const UNSTORABLE_TEXT =
  // eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
  /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function isStorableText(value: string): boolean {
  return !UNSTORABLE_TEXT.test(value);
}

/** A string PostgreSQL stores as sent: no NUL, no unpaired UTF-16 surrogates. */
export function IsStorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStorableText',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isStorableText(value),
        defaultMessage: (args) => `${args?.property} must not contain unpaired UTF-16 surrogates`,
      },
    },
    options,
  );
}

const trim = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.trim() : value;
/** Printable text without control characters. */
const PRINTABLE = /^[^\p{Cc}]*$/u;

/**
 * Trimmed printable text of `minLength`–200 characters: the names of orgs, projects, API
 * keys, devices and rules.
 */
export function IsDisplayName(minLength: number): PropertyDecorator {
  return applyDecorators(
    Transform(trim),
    IsString(),
    Length(minLength, 200),
    Matches(PRINTABLE, { message: '$property must not contain control characters' }),
  );
}
