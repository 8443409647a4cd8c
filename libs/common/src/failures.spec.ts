import { classifyFailure, FailureKind, sqlState } from './failures';

/** pg's errors carry `code`; TypeORM's QueryFailedError wraps one as `driverError`. */
const pg = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const typeorm = (code: string) =>
  Object.assign(new Error('query failed'), { driverError: pg(code) });

describe('classifyFailure', () => {
  it.each<[string, unknown, FailureKind]>([
    ['connection exception class 08', pg('08006'), 'outage'],
    ['connection refused at connect (08001)', typeorm('08001'), 'outage'],
    ['admin shutdown (failover)', typeorm('57P01'), 'outage'],
    ['crash shutdown', pg('57P02'), 'outage'],
    ['starting up', pg('57P03'), 'outage'],
    ['too many connections', pg('53300'), 'outage'],
    ['disk full', pg('53100'), 'outage'],
    ['read-only standby', pg('25006'), 'outage'],
    ['serialization failure', typeorm('40001'), 'transient'],
    ['deadlock', pg('40P01'), 'transient'],
    ['bad time zone displacement', typeorm('22009'), 'data'],
    ['numeric out of range', pg('22003'), 'data'],
    ['NUL in text', pg('22021'), 'data'],
    ['invalid json', pg('22P02'), 'data'],
    ['not null violation', pg('23502'), 'data'],
    ['no partition for the row (check violation)', pg('23514'), 'data'],
    ['row too big', pg('54000'), 'data'],
    ['unique violation is not data (callers handle it)', pg('23505'), 'unknown'],
    ['statement timeout', pg('57014'), 'unknown'],
    ['syntax error (our bug)', pg('42601'), 'unknown'],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'outage',
    ],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'outage'],
    [
      'EPIPE (five letters, not a SQLSTATE)',
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      'outage',
    ],
    ['pg: terminated', new Error('Connection terminated unexpectedly'), 'outage'],
    ['pg-pool: connect timeout', new Error('timeout exceeded when trying to connect'), 'outage'],
    [
      'pg: not queryable',
      new Error('Client has encountered a connection error and is not queryable'),
      'outage',
    ],
    [
      'ioredis: max retries',
      Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
        name: 'MaxRetriesPerRequestError',
      }),
      'outage',
    ],
    ['ioredis: closed', new Error('Connection is closed.'), 'outage'],
    [
      'ioredis: offline queue off',
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      'outage',
    ],
    ['ioredis: command timeout', new Error('Command timed out'), 'outage'],
    [
      'ioredis: cluster reconnecting',
      new Error("Cluster isn't ready and enableOfflineQueue options is false"),
      'outage',
    ],
    ['ioredis: cluster slots', new Error('Failed to refresh slots cache.'), 'outage'],
    ['ioredis: cluster seeds', new Error('None of startup nodes is available'), 'outage'],
    [
      'ioredis: a partition (socketTimeout)',
      new Error("Socket timeout. Expecting data, but didn't receive any in 30000ms."),
      'outage',
    ],
    [
      'pg: a partition (our silent socket)',
      new Error('PostgreSQL sent nothing for 65000 ms: connection dropped'),
      'outage',
    ],
    [
      'redis: replica after failover',
      new Error("READONLY You can't write against a read only replica."),
      'outage',
    ],
    ['redis: loading', new Error('LOADING Redis is loading the dataset in memory'), 'outage'],
    ['redis: OOM', new Error("OOM command not allowed when used memory > 'maxmemory'."), 'outage'],
    [
      'a wrapped cause',
      Object.assign(new Error('enqueue failed'), { cause: new Error('Connection is closed.') }),
      'outage',
    ],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'x')"), 'unknown'],
    ['a message that merely mentions a word', new Error('user said: OOM is fine'), 'unknown'],
    ['not an error at all', 'boom', 'unknown'],
    ['undefined', undefined, 'unknown'],
  ])('%s', (_name, err, kind) => {
    expect(classifyFailure(err)).toBe(kind);
  });
});

describe('sqlState', () => {
  it('reads the code through TypeORM and ignores Node error codes', () => {
    expect(sqlState(typeorm('22009'))).toBe('22009');
    expect(sqlState(pg('57P01'))).toBe('57P01');
    expect(sqlState(pg('EPIPE'))).toBeUndefined();
    expect(sqlState(pg('ECONNRESET'))).toBeUndefined();
    expect(sqlState(new Error('x'))).toBeUndefined();
  });
});
