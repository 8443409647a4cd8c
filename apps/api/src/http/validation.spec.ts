import { AppError, ErrorDetail } from '@app/common';
import { CreateRuleDto } from '@app/rules';
import {
  TelemetryAggregateQueryDto,
  TelemetryListQueryDto,
  TelemetrySinceQueryDto,
} from '@app/telemetry';
import { CreateDeviceDto, CreateOrgDto } from '@app/tenancy';
import type { ArgumentMetadata, Type, ValidationError } from '@nestjs/common';
import { createValidationPipe, flattenValidationErrors } from './validation';

const error = (
  property: string,
  constraints?: Record<string, string>,
  children: ValidationError[] = [],
  value: unknown = 'given',
) => ({ property, constraints, children, value }) as ValidationError;
/** A field the request left out: class-validator reports its value as undefined. */
const missing = (property: string, constraints: Record<string, string>) =>
  ({ property, constraints, children: [], value: undefined }) as ValidationError;

describe('flattenValidationErrors', () => {
  it('names nested fields by path and rewrites whitelist errors', () => {
    const errors = [
      error('events', undefined, [
        error('3', undefined, [error('ts', { isIso: 'ts must be ISO 8601' })]),
      ]),
      error('extra', { whitelistValidation: 'property extra should not exist' }),
    ];
    expect(flattenValidationErrors(errors)).toEqual([
      { field: 'events.3.ts', message: 'ts must be ISO 8601' },
      { field: 'extra', message: 'unknown field extra' },
    ]);
  });

  it('says a missing field is required, and nothing else about it', () => {
    const absent = missing('bucket_seconds', {
      max: 'bucket_seconds must be at most a year',
      min: 'bucket_seconds must be at least 1',
      isInt: 'bucket_seconds must be a whole number of seconds',
    });
    expect(flattenValidationErrors([absent])).toEqual([
      { field: 'bucket_seconds', message: 'bucket_seconds is required' },
    ]);
  });

  it('reports one problem per field: type before format before range, whatever the order given', () => {
    const errors = [
      error('a', { max: 'a: range', matches: 'a: format', isString: 'a: type' }),
      error('b', { isLength: 'b: range', isUuid: 'b: format' }),
      error('c', { arrayMaxSize: 'c: range', myOwnCheck: 'c: format' }),
      error('d', { min: 'd: range' }),
      error('e', { isDefined: 'e: required', isInt: 'e: type' }, [], null),
    ];
    expect(flattenValidationErrors(errors)).toEqual([
      { field: 'a', message: 'a: type' },
      { field: 'b', message: 'b: format' },
      { field: 'c', message: 'c: format' },
      { field: 'd', message: 'd: range' },
      { field: 'e', message: 'e: required' },
    ]);
  });

  it('never repeats an entry', () => {
    const errors = [
      error('ids', { isUuid: 'each id must be a UUID' }),
      error('ids', { isUuid: 'each id must be a UUID' }),
    ];
    expect(flattenValidationErrors(errors)).toEqual([
      { field: 'ids', message: 'each id must be a UUID' },
    ]);
  });

  it('keeps a nameless error (a value that is no object at all) as it is', () => {
    const nameless = {
      property: undefined,
      value: undefined,
      constraints: { unknownValue: 'an unknown value was passed to the validate function' },
      children: [],
    } as unknown as ValidationError;
    expect(flattenValidationErrors([nameless])).toEqual([
      { field: 'body', message: 'an unknown value was passed to the validate function' },
    ]);
  });
});

/** The real pipe over real DTOs: class-validator's own constraint order goes in. */
describe('the validation pipe on the api DTOs', () => {
  const pipe = createValidationPipe();
  const refusal = async (
    metatype: Type<unknown>,
    value: unknown,
    type: ArgumentMetadata['type'] = 'body',
  ): Promise<ErrorDetail[]> => {
    try {
      await pipe.transform(value, { type, metatype });
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      return (err as AppError).details ?? [];
    }
    throw new Error('accepted');
  };

  it('a missing query parameter is one "is required"', async () => {
    expect(
      await refusal(
        TelemetryAggregateQueryDto,
        { metric: 't', from: '2025-01-01T00:00:00Z', to: '2025-01-02T00:00:00Z', agg: 'avg' },
        'query',
      ),
    ).toEqual([{ field: 'bucket_seconds', message: 'bucket_seconds is required' }]);
    expect(await refusal(TelemetrySinceQueryDto, {}, 'query')).toEqual([
      { field: 'since_ts', message: 'since_ts is required' },
    ]);
  });

  it.each([
    ['abc', 'bucket_seconds must be a whole number of seconds'],
    ['1.5', 'bucket_seconds must be a whole number of seconds'],
    ['0', 'bucket_seconds must be at least 1'],
    ['99999999', 'bucket_seconds must be at most a year'],
  ])('bucket_seconds=%s: only %j', async (bucket, message) => {
    const query = {
      metric: 't',
      from: '2025-01-01T00:00:00Z',
      to: '2025-01-02T00:00:00Z',
      agg: 'avg',
      bucket_seconds: bucket,
    };
    expect(await refusal(TelemetryAggregateQueryDto, query, 'query')).toEqual([
      { field: 'bucket_seconds', message },
    ]);
  });

  it('an empty body names every required field once, in the order of the DTO', async () => {
    expect(await refusal(CreateRuleDto, {})).toEqual(
      ['name', 'metric', 'operator', 'threshold', 'window_n', 'required_k'].map((field) => ({
        field,
        message: `${field} is required`,
      })),
    );
    expect(await refusal(CreateOrgDto, {})).toEqual([
      { field: 'name', message: 'name is required' },
    ]);
    expect(await refusal(CreateDeviceDto, undefined)).toEqual([
      { field: 'external_id', message: 'external_id is required' },
    ]);
  });

  it.each<[string, Record<string, unknown>, ErrorDetail]>([
    ['a name of the wrong type', { name: 42 }, { field: 'name', message: 'name must be a string' }],
    [
      'a name with a control character',
      { name: 'a\u0007b' },
      { field: 'name', message: 'name must not contain control characters' },
    ],
    [
      'an empty name',
      { name: '   ' },
      { field: 'name', message: 'name must be longer than or equal to 1 characters' },
    ],
    [
      'a window that is not a number',
      { window_n: 'five' },
      { field: 'window_n', message: 'window_n must be an integer number' },
    ],
    [
      'a window too large',
      { window_n: 5000 },
      { field: 'window_n', message: 'window_n must not be greater than 1000' },
    ],
    [
      'a null threshold',
      { threshold: null },
      { field: 'threshold', message: 'threshold must be a finite number' },
    ],
  ])('%s: one message, the first problem', async (_label, patch, detail) => {
    const body = {
      name: 'hot',
      metric: 't',
      operator: '>',
      threshold: 1,
      window_n: 1,
      required_k: 1,
      ...patch,
    };
    expect(await refusal(CreateRuleDto, body)).toEqual([detail]);
  });

  it('a time that is neither form names both', async () => {
    const details = await refusal(TelemetryListQueryDto, { from: 'yesterday' }, 'query');
    expect(details).toEqual([{ field: 'from', message: expect.stringMatching(/ISO 8601/) }]);
    expect(details[0].message).toMatch(/unix seconds/);
  });

  it('still names unknown fields', async () => {
    expect(await refusal(CreateOrgDto, { name: 'x', colour: 'red' })).toEqual([
      { field: 'colour', message: 'unknown field colour' },
    ]);
  });
});
