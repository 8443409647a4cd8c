import { ValidateIf } from 'class-validator';

/**
 * Optional, but not nullable: `@IsOptional()` also skips validation for `null`, which
 * would let `{"threshold": null}` through to a NOT NULL column (a 500). This skips only
 * when the field is absent.
 */
export const IsOptionalNonNull = (): PropertyDecorator =>
  ValidateIf((_object, value) => value !== undefined);
