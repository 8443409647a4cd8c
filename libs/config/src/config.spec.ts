import { loadConfig } from './config';
import { parseDotEnv } from './env';
import { ConfigValidationError, validateEnv } from './env.validation';

describe('environment validation', () => {
  const valid = { ADMIN_TOKEN: 'a'.repeat(16) };

  it('applies the contract defaults', () => {
    const env = validateEnv(valid);
    expect(env.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/telemetry');
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.PORT).toBe(8000);
    expect(env.WORKER_PORT).toBe(8001);
    expect(env.LOG_LEVEL).toBe('info');
    expect(env.WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe(false);
    expect(env.WEBHOOK_CIRCUIT_FAILURE_THRESHOLD).toBe(5);
    expect(env.WEBHOOK_CIRCUIT_RECOVERY_SECONDS).toBe(60);
    expect(env.WEBHOOK_TIMEOUT_MS).toBe(10000);
    expect(env.RATE_LIMIT_INGEST_PER_MINUTE).toBe(3000);
    expect(env.RATE_LIMIT_API_PER_MINUTE).toBe(1200);
    expect(env.RATE_LIMIT_ANON_PER_MINUTE).toBe(120);
  });

  it('converts numbers and booleans from strings', () => {
    const env = validateEnv({ ...valid, PORT: '9000', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' });
    expect(env.PORT).toBe(9000);
    expect(env.WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe(true);
  });

  it('names every offending variable in one error', () => {
    let caught: unknown;
    try {
      validateEnv({
        ADMIN_TOKEN: 'short',
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        LOG_LEVEL: 'loud',
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigValidationError);
    const message = (caught as Error).message;
    for (const name of ['ADMIN_TOKEN', 'PORT', 'DATABASE_URL', 'LOG_LEVEL']) {
      expect(message).toContain(name);
    }
    expect((caught as ConfigValidationError).problems).toHaveLength(4);
  });

  it('takes LOG_FORMAT auto (the default), json or pretty', () => {
    expect(loadConfig({ ...valid, LOG_FORMAT: '' }).app.logFormat).toBe('auto');
    expect(loadConfig({ ...valid, LOG_FORMAT: 'pretty' }).app.logFormat).toBe('pretty');
    expect(() => validateEnv({ ...valid, LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
  });

  it('reads WORKER_QUEUES as roles, all by default, and each role its concurrency', () => {
    expect(loadConfig(valid).worker.roles).toEqual([
      'ingest',
      'evaluate',
      'alert-events',
      'deliver',
    ]);
    const roles = loadConfig({
      ...valid,
      WORKER_QUEUES: ' deliver, ingest ,deliver',
      WORKER_CONCURRENCY: '3',
      WORKER_CONCURRENCY_INGEST: '8',
      WEBHOOK_CONCURRENCY: '20',
    }).worker;
    expect(roles.roles).toEqual(['ingest', 'deliver']);
    expect(roles.roleConcurrency).toEqual({
      ingest: 8,
      evaluate: 3,
      'alert-events': 3,
      deliver: 20,
    });
    expect(loadConfig({ ...valid, WORKER_QUEUES: 'all,ingest' }).worker.roles).toHaveLength(4);
  });

  it.each(['', 'ingest,', 'ingest;deliver', 'evaluation', 'ALL'])(
    'refuses WORKER_QUEUES=%j naming the roles',
    (value) => {
      const env = { ...valid, WORKER_QUEUES: value };
      if (value === '') {
        // Empty is unset: the default, all.
        expect(loadConfig(env).worker.roles).toHaveLength(4);
        return;
      }
      expect(() => validateEnv(env)).toThrow(
        /WORKER_QUEUES must be all or a comma-separated list of ingest, evaluate, alert-events, deliver/,
      );
    },
  );

  it('requires ADMIN_TOKEN', () => {
    expect(() => validateEnv({})).toThrow(/ADMIN_TOKEN/);
  });

  it('treats an empty variable as unset', () => {
    expect(validateEnv({ ...valid, PORT: '' }).PORT).toBe(8000);
  });

  it('keeps readings forever in monthly partitions unless told otherwise', () => {
    expect(loadConfig(valid).telemetryStorage).toEqual({
      partitionInterval: 'month',
      retentionDays: 0,
    });
    expect(
      loadConfig({ ...valid, TELEMETRY_PARTITION_INTERVAL: 'day', TELEMETRY_RETENTION_DAYS: '90' })
        .telemetryStorage,
    ).toEqual({ partitionInterval: 'day', retentionDays: 90 });
    expect(() => validateEnv({ ...valid, TELEMETRY_PARTITION_INTERVAL: 'week' })).toThrow(
      /TELEMETRY_PARTITION_INTERVAL/,
    );
    expect(() => validateEnv({ ...valid, TELEMETRY_RETENTION_DAYS: '-1' })).toThrow(
      /TELEMETRY_RETENTION_DAYS/,
    );
  });

  it('builds the typed config with overrides winning', () => {
    const config = loadConfig({
      ADMIN_TOKEN: 'b'.repeat(20),
      TRUST_PROXY: '2',
      REDIS_PREFIX: 'x1',
    });
    expect(config.auth.adminToken).toBe('b'.repeat(20));
    expect(config.http.trustProxy).toBe(2);
    expect(config.redis.prefix).toBe('x1');
  });
});

describe('parseDotEnv', () => {
  it('reads keys, quotes, comments and export prefixes', () => {
    expect(
      parseDotEnv('# c\nA=1\nexport B="two words"\nC=\'x#y\'\nD=val # trailing\n\nbad line'),
    ).toEqual({ A: '1', B: 'two words', C: 'x#y', D: 'val' });
  });
});

describe('processes without requests', () => {
  it('do not need ADMIN_TOKEN', () => {
    expect(validateEnv({}, { requireAdminToken: false }).DATABASE_URL).toContain('telemetry');
  });
});
