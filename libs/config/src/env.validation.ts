import { plainToInstance, Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import { WORKER_QUEUES_RE, WORKER_ROLES } from './worker-roles';

/** `LOG_FORMAT`: JSON lines, pino-pretty's readable lines, or `auto` (see the logger). */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormatSetting = (typeof LOG_FORMATS)[number];

/** `TELEMETRY_PARTITION_INTERVAL`: the width of a `telemetry` partition (UTC days or months). */
export const PARTITION_INTERVALS = ['day', 'month'] as const;
export type PartitionInterval = (typeof PARTITION_INTERVALS)[number];

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  return value;
};

/**
 * Every environment variable the apps read (README, Configuration, lists them all): the
 * public ones and our own operational knobs. Defaults live here and nowhere else.
 */
export class EnvironmentVariables {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV = 'development';

  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/telemetry';

  @Transform(toInt)
  @Min(1)
  @Max(200)
  @IsInt()
  DATABASE_POOL_SIZE = 10;

  /**
   * What sits between the processes and PostgreSQL: `none`, or `transaction` for a pooler
   * in transaction mode (PgBouncer `pool_mode = transaction`). With `transaction` the
   * connections carry no session settings (the statement and idle-in-transaction timeouts
   * are then the database role's: docs/operations.md, "Behind PgBouncer").
   */
  @IsIn(['none', 'transaction'])
  DATABASE_POOLER: 'none' | 'transaction' = 'none';

  /**
   * One Redis (`redis://`, `rediss://` for TLS), or a Redis Cluster: `redis+cluster://` /
   * `rediss+cluster://` followed by one or more `host:port` seed nodes, comma-separated
   * (`redis+cluster://:password@10.0.0.1:6379,10.0.0.2:6379`). The key layout follows:
   * docs/operations.md, "Redis Cluster".
   */
  @Matches(/^rediss?(\+cluster)?:\/\/[^\s?#]+$/, {
    message:
      'REDIS_URL must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL, without a query string',
  })
  REDIS_URL = 'redis://127.0.0.1:6379';

  /** Namespace for every Redis key and channel we own, BullMQ's included. */
  @Matches(/^[A-Za-z0-9_:-]{1,64}$/, { message: 'REDIS_PREFIX must be 1-64 of [A-Za-z0-9_:-]' })
  REDIS_PREFIX = 'tp';

  @Matches(/^\S{16,}$/, { message: 'ADMIN_TOKEN is required: at least 16 characters, no spaces' })
  ADMIN_TOKEN: string;

  @Transform(toInt)
  @Min(0)
  @Max(65535)
  @IsInt()
  PORT = 8000;

  @Transform(toInt)
  @Min(0)
  @Max(65535)
  @IsInt()
  WORKER_PORT = 8001;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /** `auto`: readable (pino-pretty) in development, JSON lines in production and test. */
  @IsIn(LOG_FORMATS)
  LOG_FORMAT: LogFormatSetting = 'auto';

  /** Express `trust proxy`: `false`, `true`, a hop count, or a comma-separated list of CIDRs. */
  @IsString()
  TRUST_PROXY = 'false';

  /** Whether the api serves the web console at /console. */
  @Transform(toBool)
  @IsBoolean()
  CONSOLE_ENABLED = true;

  /**
   * The built web console (`npm run build:console` writes it), relative to the working
   * directory.
   */
  @IsString()
  CONSOLE_DIR = 'dist/console';

  /** A client must send its request headers within this (Node's headersTimeout). */
  @Transform(toInt)
  @Min(1000)
  @Max(600000)
  @IsInt()
  HTTP_HEADERS_TIMEOUT_MS = 10000;

  /** … and the whole request, an 8 MiB body included, within this (Node's requestTimeout). */
  @Transform(toInt)
  @Min(1000)
  @Max(3600000)
  @IsInt()
  HTTP_REQUEST_TIMEOUT_MS = 60000;

  /**
   * A statement of the api (a read a client asked for) is cancelled after this; the
   * worker's statements get DATABASE_STATEMENT_TIMEOUT_MS.
   */
  @Transform(toInt)
  @Min(100)
  @IsInt()
  API_STATEMENT_TIMEOUT_MS = 15000;

  /** A statement of the worker (or migrations) is cancelled after this. */
  @Transform(toInt)
  @Min(100)
  @IsInt()
  DATABASE_STATEMENT_TIMEOUT_MS = 60000;

  /** Quotas per project: rules, webhooks and devices a project may have (422 past them). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  QUOTA_RULES_PER_PROJECT = 1000;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  QUOTA_WEBHOOKS_PER_PROJECT = 50;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  QUOTA_DEVICES_PER_PROJECT = 100000;

  /** Telemetry reads: the widest `from`–`to` an aggregate may span, in days (422 past it). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  TELEMETRY_AGGREGATE_MAX_DAYS = 400;

  /** … and the most readings one aggregate may read (422 naming it past that). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  TELEMETRY_AGGREGATE_MAX_ROWS = 1000000;

  /** The shortest reminder interval a rule may ask for, in seconds (422 naming it below). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  REMINDER_MIN_INTERVAL_SECONDS = 60;

  /** The shortest `offline_after_seconds` an offline rule may have (422 naming it below). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  OFFLINE_MIN_SECONDS = 60;

  /** How often the offline scan runs, in milliseconds (where the evaluate role runs). */
  @Transform(toInt)
  @Min(100)
  @IsInt()
  OFFLINE_SCAN_INTERVAL_MS = 10000;

  /** The most readings one rule backtest may evaluate (422 naming it past that). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  BACKTEST_MAX_READINGS = 1000000;

  /** The most devices one rule backtest may cover (422 naming it past that). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  BACKTEST_MAX_DEVICES = 1000;

  /** A page of readings stops early (with next_cursor) once it holds this many bytes of data. */
  @Transform(toInt)
  @Min(1024)
  @IsInt()
  TELEMETRY_PAGE_MAX_BYTES = 4 * 1024 * 1024;

  /** Telemetry reads (lists and aggregates) one project may run at once per api process (429 past it). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  TELEMETRY_READS_PER_PROJECT = 4;

  /**
   * Readings are kept this many days at most, then dropped a whole partition at a time
   * (a reading lives up to one partition width longer); 0 keeps them forever. A project's
   * `retention_days` may only shorten it.
   */
  @Transform(toInt)
  @Min(0)
  @Max(36500)
  @IsInt()
  TELEMETRY_RETENTION_DAYS = 0;

  /** Width of each `telemetry` partition: `day` or `month` (UTC); read when one is created. */
  @IsIn(PARTITION_INTERVALS)
  TELEMETRY_PARTITION_INTERVAL: PartitionInterval = 'month';

  @Transform(toBool)
  @IsBoolean()
  WEBHOOK_ALLOW_PRIVATE_NETWORKS = false;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  WEBHOOK_CIRCUIT_FAILURE_THRESHOLD = 5;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  WEBHOOK_CIRCUIT_RECOVERY_SECONDS = 60;

  @Transform(toInt)
  @Min(100)
  @Max(120000)
  @IsInt()
  WEBHOOK_TIMEOUT_MS = 10000;

  /**
   * Delays between delivery attempts, in seconds (decimals allowed), one per retry; each is
   * jittered by ±20%. The default makes 8 attempts over about 27.6 hours.
   */
  @Matches(/^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?){0,29}\s*$/, {
    message: 'WEBHOOK_RETRY_SCHEDULE must be 1-30 comma-separated delays in seconds',
  })
  WEBHOOK_RETRY_SCHEDULE = '5,300,1800,7200,18000,36000,36000';

  /**
   * Deliveries of one project in flight at once, across every worker: a tenant with slow
   * endpoints holds at most this many delivery slots, never all of them.
   */
  @Transform(toInt)
  @Min(1)
  @Max(1000)
  @IsInt()
  WEBHOOK_PROJECT_CONCURRENCY = 4;

  /**
   * Keys that encrypt webhook signing secrets at rest (AES-256-GCM): `kid:base64key[,…]`,
   * 32-byte keys, the first encrypts, all decrypt. Empty: a key derived from ADMIN_TOKEN.
   */
  @IsString()
  WEBHOOK_SECRET_KEYS = '';

  /** Deliveries in flight per worker process (their own queue, apart from ingestion). */
  @Transform(toInt)
  @Min(1)
  @Max(1000)
  @IsInt()
  WEBHOOK_CONCURRENCY = 16;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  RATE_LIMIT_INGEST_PER_MINUTE = 3000;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  RATE_LIMIT_API_PER_MINUTE = 1200;

  @Transform(toInt)
  @Min(1)
  @IsInt()
  RATE_LIMIT_ANON_PER_MINUTE = 120;

  /** How long a verified API key may be served from memory without asking PostgreSQL. */
  @Transform(toInt)
  @Min(0)
  @Max(3600)
  @IsInt()
  API_KEY_CACHE_TTL_SECONDS = 300;

  @Transform(toInt)
  @Min(0)
  @IsInt()
  API_KEY_CACHE_MAX_ENTRIES = 10000;

  /** `last_used_at` is buffered in memory and written at most this often. */
  @Transform(toInt)
  @Min(100)
  @IsInt()
  API_KEY_LAST_USED_FLUSH_MS = 15000;

  @Transform(toInt)
  @Min(1)
  @Max(256)
  @IsInt()
  WORKER_CONCURRENCY = 4;

  /**
   * What this worker process consumes: `all`, or a comma-separated list of roles (`ingest`,
   * `evaluate`, `alert-events`, `deliver`). A process never opens a consumer for a queue
   * outside its roles, and runs only its roles' periodic duties.
   */
  @Matches(WORKER_QUEUES_RE, {
    message: `WORKER_QUEUES must be all or a comma-separated list of ${WORKER_ROLES.join(', ')}`,
  })
  WORKER_QUEUES = 'all';

  /** Jobs of the `ingest` role in flight per process; 0: WORKER_CONCURRENCY. */
  @Transform(toInt)
  @Min(0)
  @Max(256)
  @IsInt()
  WORKER_CONCURRENCY_INGEST = 0;

  /** Jobs of the `evaluate` role in flight per process; 0: WORKER_CONCURRENCY. */
  @Transform(toInt)
  @Min(0)
  @Max(256)
  @IsInt()
  WORKER_CONCURRENCY_EVALUATE = 0;

  /** Jobs of the `alert-events` role in flight per process; 0: WORKER_CONCURRENCY. */
  @Transform(toInt)
  @Min(0)
  @Max(256)
  @IsInt()
  WORKER_CONCURRENCY_ALERT_EVENTS = 0;

  /** Backpressure: `POST /telemetry` answers 429 while more batches than this wait. */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  INGEST_BACKLOG_MAX_JOBS = 1000;

  /** Backpressure: … or while the waiting batches hold more bytes of JSON than this. */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  INGEST_BACKLOG_MAX_BYTES = 256 * 1024 * 1024;

  /** Fairness: one project's batches may hold at most this many places in the backlog. */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  INGEST_BACKLOG_PROJECT_MAX_JOBS = 250;

  /** … and at most this many bytes of it (a single batch is let in whatever its size). */
  @Transform(toInt)
  @Min(1)
  @IsInt()
  INGEST_BACKLOG_PROJECT_MAX_BYTES = 64 * 1024 * 1024;

  /** How long a worker's lock on a job lasts; a crashed worker's job is retried after it. */
  @Transform(toInt)
  @Min(1000)
  @IsInt()
  QUEUE_LOCK_DURATION_MS = 30000;

  /**
   * Attempts of a job that fails with an unexpected error (a bug, a poison value storage
   * did not classify). Outages of PostgreSQL or Redis don't use attempts: jobs wait them out.
   */
  @Transform(toInt)
  @Min(1)
  @Max(100)
  @IsInt()
  QUEUE_ATTEMPTS = 8;

  /** First retry delay of such a job, doubled (with jitter) for each further attempt. */
  @Transform(toInt)
  @Min(10)
  @IsInt()
  QUEUE_BACKOFF_MS = 1000;

  /** Milliseconds the worker waits for in-flight jobs on SIGTERM before giving up. */
  @Transform(toInt)
  @Min(0)
  @IsInt()
  SHUTDOWN_GRACE_MS = 25000;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment: ${problems.join('; ')}`);
    this.name = 'ConfigValidationError';
  }
}

/** Validates a raw environment, reporting every bad variable in one error. */
export function validateEnv(
  raw: Record<string, unknown>,
  opts: { requireAdminToken?: boolean } = {},
): EnvironmentVariables {
  const cleaned = Object.fromEntries(
    Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''),
  );
  // Processes that serve no requests (migrations) don't need the admin token.
  if (opts.requireAdminToken === false) cleaned.ADMIN_TOKEN ??= 'unused-by-this-process';
  const env = plainToInstance(EnvironmentVariables, cleaned, {
    enableImplicitConversion: false,
    excludeExtraneousValues: false,
  });
  const errors = validateSync(env, {
    skipMissingProperties: false,
    forbidUnknownValues: false,
    stopAtFirstError: true,
  });
  if (errors.length > 0) {
    const problems = errors
      .map((e) => `${e.property}: ${Object.values(e.constraints ?? {}).join(', ')}`)
      .sort();
    throw new ConfigValidationError(problems);
  }
  return env;
}
