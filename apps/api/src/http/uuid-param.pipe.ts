import { AppError, isUuid } from '@app/common';
import { Injectable, PipeTransform } from '@nestjs/common';

/**
 * A path id that is not a UUID names nothing, so it is a 404 like any other missing
 * resource (and never a database cast error).
 */
@Injectable()
export class UuidParam implements PipeTransform<string, string> {
  constructor(private readonly resource: string) {}

  transform(value: string): string {
    if (!isUuid(value)) throw new AppError('not_found', `${this.resource} not found`);
    return value.toLowerCase();
  }
}
