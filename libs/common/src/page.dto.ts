import { Type } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';

/** OpenAPI shape of `{ items: T[], next_cursor }` for one item type. */
export function PageOf<T>(
  item: Type<T>,
  name: string,
): Type<{ items: T[]; next_cursor: string | null }> {
  class PageDto {
    @ApiProperty({ type: [item] })
    items: T[];

    @ApiProperty({
      type: String,
      nullable: true,
      description: 'pass as ?cursor= for the next page; null on the last',
    })
    next_cursor: string | null;
  }
  Object.defineProperty(PageDto, 'name', { value: name });
  return PageDto;
}
