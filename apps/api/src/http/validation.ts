import { ErrorDetail, validationFailed } from '@app/common';
import { ValidationError, ValidationPipe } from '@nestjs/common';

/** Flattens class-validator's tree into `{field: "a.b.0.c", message}` entries. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const error of errors) {
    const property = error.property ?? 'body';
    const field = parent ? `${parent}.${property}` : property;
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({
        field,
        message: message.replace(/^property (\S+) should not exist$/, 'unknown field $1'),
      });
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, field));
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
