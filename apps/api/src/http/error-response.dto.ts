import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ErrorDetailDto {
  @ApiProperty({ example: 'events.3.ts' }) field: string;
  @ApiProperty({ example: 'ts must be an ISO 8601 timestamp with a zone' }) message: string;
}

/** The one error body of the contract. */
export class ErrorResponse {
  @ApiProperty({ example: 422 }) statusCode: number;
  @ApiProperty({ example: 'Unprocessable Entity' }) error: string;
  @ApiProperty({ example: 'the request body failed validation' }) message: string;
  @ApiPropertyOptional({ type: [ErrorDetailDto] }) details?: ErrorDetailDto[];
  @ApiPropertyOptional({
    description:
      'on a 500, and on a 422 for a value the database refused: quote it when reporting the problem',
  })
  error_id?: string;
}
