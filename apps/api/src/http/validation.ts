import { ErrorDetail, validationFailed } from '@app/common';
import { ValidationError, ValidationPipe } from '@nestjs/common';

/**
 * The order in which a field's failed constraints are worth reading: that it is missing,
 * then that it has the wrong type, then its format, then its range. Only the first is
 * reported: `bucket_seconds=abc` is "must be a whole number", not also "at least 1" and
 * "at most a year", which follow from it. Constraints not listed here (our own, `matches`,
 * `isIn`, `isUuid`…) are about the format.
 */
const REQUIRED = 0;
const TYPE = 1;
const FORMAT = 2;
const RANGE = 3;
const RANK: Record<string, number> = {
  isDefined: REQUIRED,
  isString: TYPE,
  isInt: TYPE,
  isNumber: TYPE,
  isBoolean: TYPE,
  isArray: TYPE,
  isObject: TYPE,
  min: RANGE,
  max: RANGE,
  isLength: RANGE,
  minLength: RANGE,
  maxLength: RANGE,
  arrayMinSize: RANGE,
  arrayMaxSize: RANGE,
  arrayNotEmpty: RANGE,
  arrayUnique: RANGE,
};

/** class-validator's name for a property the DTO does not declare (`whitelist`). */
const UNKNOWN_FIELD = 'whitelistValidation';

/** The one message worth showing for a field, or none when it has no failed constraint. */
function firstProblem(error: ValidationError): string | undefined {
  const failed = Object.entries(error.constraints ?? {});
  if (failed.length === 0) return undefined;
  if (failed.some(([name]) => name === UNKNOWN_FIELD)) return `unknown field ${error.property}`;
  // Absent (only optional fields may be, and those are never validated): every constraint
  // fails, but the one problem is that the field is missing.
  if (error.value === undefined && error.property) return `${error.property} is required`;
  const rank = ([name]: [string, string]) => RANK[name] ?? FORMAT;
  // A stable sort: constraints of one rank keep class-validator's order.
  return [...failed].sort((a, b) => rank(a) - rank(b))[0][1];
}

/**
 * Flattens class-validator's tree into `{field: "a.b.0.c", message}` entries: one per
 * field, the first problem in the order required → type → format → range, and never the
 * same entry twice.
 */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const seen = new Set<string>();
  const add = (detail: ErrorDetail) => {
    const id = `${detail.field}\u0000${detail.message}`;
    if (seen.has(id)) return;
    seen.add(id);
    out.push(detail);
  };
  for (const error of errors) {
    const property = error.property ?? 'body';
    const field = parent ? `${parent}.${property}` : property;
    const message = firstProblem(error);
    if (message !== undefined) add({ field, message });
    if (error.children?.length) flattenValidationErrors(error.children, field).forEach(add);
  }
  return out;
}

/** The contract's 422: a well-formed body (or query) that fails validation. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => validationFailed(flattenValidationErrors(errors)),
  });
}
