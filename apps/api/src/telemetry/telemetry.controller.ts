import { AppError, PageOf, ProjectId } from '@app/common';
import {
  AggregateResponse,
  IngestAcceptedResponse,
  IngestRequestDto,
  MAX_BUCKETS,
  PlainBatch,
  Reading,
  readPlainBatch,
  ReadingResponse,
  TelemetryAggregateQueryDto,
  TelemetryListQueryDto,
  TelemetryIntakeService,
  TelemetryReadsService,
  TelemetrySinceQueryDto,
} from '@app/telemetry';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  UseInterceptors,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { JsonBodyInterceptor } from '../http/json-body.interceptor';
import { INGEST_BODY_LIMIT, type RawBodyRequest } from '../http/json-body.middleware';
import { UuidParam } from '../http/uuid-param.pipe';

type IngestRequest = RawBodyRequest & { plainBatch?: PlainBatch };

/** The bytes of a plain batch are all the api needs: no parse (see readPlainBatch). */
function plainBatchShortcut(req: IngestRequest, bytes: Buffer): boolean {
  req.plainBatch = readPlainBatch(bytes) ?? undefined;
  return req.plainBatch !== undefined;
}

@ApiTags('telemetry')
@Controller('telemetry')
export class TelemetryController {
  constructor(
    private readonly intake: TelemetryIntakeService,
    private readonly reads: TelemetryReadsService,
  ) {}

  @Post()
  @HttpCode(202)
  @RequireScope('ingest')
  // Up to 8 MiB, read only once the rate limit and the key let the request in (the global
  // body parser leaves this route alone: configureApp). A plain batch is read from its
  // bytes without the parse (readPlainBatch); any other body is parsed and validated.
  @UseInterceptors(new JsonBodyInterceptor(INGEST_BODY_LIMIT, plainBatchShortcut))
  @ApiOperation({
    summary: 'Queue a batch of 1 to 5,000 readings',
    description:
      'Answers 202 once the batch is stored in the queue; the worker writes it to PostgreSQL shortly after. ' +
      'An unknown device_external_id registers the device (unless the project turned that off: 404). ' +
      'The same (device, ts) sent again is stored once.',
  })
  @ApiBody({ type: IngestRequestDto })
  @ApiAcceptedResponse({ type: IngestAcceptedResponse })
  @ApiErrors(422, {
    400: 'malformed JSON',
    404: 'unknown device and auto-registration is off',
    413: 'over 8 MiB or over 5,000 events',
    429: 'rate limited, or the ingest backlog is full',
    503: 'the queue (Redis) is unavailable',
  })
  ingest(
    @CurrentProject() projectId: ProjectId,
    @Body() body: unknown,
    @Req() req: IngestRequest,
  ): Promise<IngestAcceptedResponse> {
    return this.intake.accept(projectId, {
      body,
      // The raw bytes are only queued when they are UTF-8 (body-parser also accepts UTF-16/32);
      // a plain batch's always are (it is only read from UTF-8, and is ASCII).
      raw:
        req.plainBatch || !/charset=(?!"?utf-?8\b)/i.test(req.headers['content-type'] ?? '')
          ? req.rawBody
          : undefined,
      plain: req.plainBatch,
      correlationId: String(req.id ?? ''),
    });
  }

  @Get('devices/:device_id/telemetry')
  @RequireScope('read')
  @ApiOperation({ summary: "A device's readings, newest first" })
  @ApiOkResponse({ type: PageOf(ReadingResponse, 'ReadingPage') })
  @ApiErrors(404, 422)
  list(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Query() q: TelemetryListQueryDto,
  ) {
    const range = timeRange(q.from, q.to);
    return this.reads.list(projectId, deviceId, {
      limit: q.limit ?? 100,
      cursor: q.cursor,
      ...range,
    });
  }

  @Get('devices/:device_id/telemetry/latest')
  @RequireScope('read')
  @ApiOperation({ summary: "A device's newest reading" })
  @ApiOkResponse({ type: ReadingResponse })
  @ApiErrors({ 404: 'unknown device, or no readings yet' })
  latest(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
  ): Promise<Reading> {
    return this.reads.latest(projectId, deviceId);
  }

  @Get('devices/:device_id/telemetry/since')
  @RequireScope('read')
  @ApiOperation({ summary: 'Readings newer than since_ts, oldest first' })
  @ApiOkResponse({ type: PageOf(ReadingResponse, 'ReadingSincePage') })
  @ApiErrors(404, 422)
  since(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Query() q: TelemetrySinceQueryDto,
  ) {
    return this.reads.since(projectId, deviceId, q.since_ts, {
      limit: q.limit ?? 100,
      cursor: q.cursor,
    });
  }

  @Get('devices/:device_id/telemetry/aggregate')
  @RequireScope('read')
  @ApiOperation({
    summary: 'avg/min/max/sum/count of a metric per epoch-aligned bucket over [from, to)',
  })
  @ApiOkResponse({ type: AggregateResponse })
  @ApiErrors(404, 422)
  aggregate(
    @CurrentProject() projectId: ProjectId,
    @Param('device_id', new UuidParam('device')) deviceId: string,
    @Query() q: TelemetryAggregateQueryDto,
  ) {
    const { from, to } = timeRange(q.from, q.to) as { from: Date; to: Date };
    if ((to.getTime() - from.getTime()) / 1000 / q.bucket_seconds > MAX_BUCKETS) {
      throw new AppError(
        'validation_failed',
        `at most ${MAX_BUCKETS} buckets per query; widen bucket_seconds`,
        [
          {
            field: 'bucket_seconds',
            message: `(to - from) / bucket_seconds must be at most ${MAX_BUCKETS}`,
          },
        ],
      );
    }
    return this.reads.aggregate(projectId, deviceId, {
      metric: q.metric,
      from,
      to,
      bucketSeconds: q.bucket_seconds,
      agg: q.agg,
    });
  }
}

function timeRange(from?: string, to?: string): { from?: Date; to?: Date } {
  const range = { from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined };
  if (range.from && range.to && range.from >= range.to) {
    throw new AppError('validation_failed', 'from must be before to', [
      { field: 'to', message: 'to must be after from' },
    ]);
  }
  return range;
}
