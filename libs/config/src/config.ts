import { EnvSource, readEnv } from './env';
import {
  EnvironmentVariables,
  LogFormatSetting,
  PartitionInterval,
  validateEnv,
} from './env.validation';
import { parseWorkerRoles, WorkerRole } from './worker-roles';

/**
 * Typed configuration, one key per area. Read it through
 * `ConfigService<AppConfig, true>.get('database', { infer: true })`.
 */
export interface AppConfig {
  app: {
    env: 'development' | 'production' | 'test';
    logLevel: string;
    logFormat: LogFormatSetting;
  };
  database: {
    url: string;
    poolSize: number;
    /** A transaction-mode pooler in front of PostgreSQL: no session settings sent. */
    pooler: 'none' | 'transaction';
    statementTimeoutMs: number;
    apiStatementTimeoutMs: number;
  };
  redis: { url: string; prefix: string };
  http: {
    port: number;
    trustProxy: boolean | number | string;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    /** Where the built console is; null when the api serves none. */
    consoleDir: string | null;
  };
  auth: {
    adminToken: string;
    keyCacheTtlMs: number;
    keyCacheMaxEntries: number;
    lastUsedFlushMs: number;
  };
  rateLimit: { ingestPerMinute: number; apiPerMinute: number; anonPerMinute: number };
  webhooks: {
    allowPrivateNetworks: boolean;
    circuitFailureThreshold: number;
    circuitRecoverySeconds: number;
    timeoutMs: number;
    /** Seconds before each retry (jittered); attempts = length + 1. */
    retryScheduleSeconds: number[];
    concurrency: number;
    projectConcurrency: number;
    secretKeys: string;
  };
  quotas: { rulesPerProject: number; webhooksPerProject: number; devicesPerProject: number };
  telemetryReads: {
    aggregateMaxDays: number;
    aggregateMaxRows: number;
    pageMaxBytes: number;
    perProject: number;
  };
  /** The shortest `reminder_interval_seconds` a rule may have (422 below it). */
  reminders: { minIntervalSeconds: number };
  /** Offline rules: the shortest `offline_after_seconds`, and how often the scan runs. */
  offline: { minSeconds: number; scanIntervalMs: number };
  /** Rule backtests (`POST /projects/{id}/rules/backtest`): 422 past either. */
  backtest: { maxReadings: number; maxDevices: number };
  /** Partitions of `telemetry` and how long readings are kept (the worker's maintenance). */
  telemetryStorage: {
    partitionInterval: PartitionInterval;
    /** 0: forever. */
    retentionDays: number;
  };
  worker: {
    port: number;
    concurrency: number;
    shutdownGraceMs: number;
    lockDurationMs: number;
    /** The roles this process runs (WORKER_QUEUES). */
    roles: WorkerRole[];
    /** Jobs in flight per process, per role (`deliver`: WEBHOOK_CONCURRENCY). */
    roleConcurrency: Record<WorkerRole, number>;
  };
  queue: { attempts: number; backoffMs: number };
  ingest: {
    backlogMaxJobs: number;
    backlogMaxBytes: number;
    projectMaxJobs: number;
    projectMaxBytes: number;
  };
}

export function toAppConfig(env: EnvironmentVariables): AppConfig {
  return {
    app: {
      env: env.NODE_ENV as AppConfig['app']['env'],
      logLevel: env.LOG_LEVEL,
      logFormat: env.LOG_FORMAT,
    },
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      pooler: env.DATABASE_POOLER,
      statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
      apiStatementTimeoutMs: env.API_STATEMENT_TIMEOUT_MS,
    },
    redis: { url: env.REDIS_URL, prefix: env.REDIS_PREFIX },
    http: {
      port: env.PORT,
      trustProxy: parseTrustProxy(env.TRUST_PROXY),
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
      consoleDir: env.CONSOLE_ENABLED ? env.CONSOLE_DIR : null,
    },
    auth: {
      adminToken: env.ADMIN_TOKEN,
      keyCacheTtlMs: env.API_KEY_CACHE_TTL_SECONDS * 1000,
      keyCacheMaxEntries: env.API_KEY_CACHE_MAX_ENTRIES,
      lastUsedFlushMs: env.API_KEY_LAST_USED_FLUSH_MS,
    },
    rateLimit: {
      ingestPerMinute: env.RATE_LIMIT_INGEST_PER_MINUTE,
      apiPerMinute: env.RATE_LIMIT_API_PER_MINUTE,
      anonPerMinute: env.RATE_LIMIT_ANON_PER_MINUTE,
    },
    webhooks: {
      allowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      circuitFailureThreshold: env.WEBHOOK_CIRCUIT_FAILURE_THRESHOLD,
      circuitRecoverySeconds: env.WEBHOOK_CIRCUIT_RECOVERY_SECONDS,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      retryScheduleSeconds: env.WEBHOOK_RETRY_SCHEDULE.split(',').map((v) => Number(v.trim())),
      concurrency: env.WEBHOOK_CONCURRENCY,
      projectConcurrency: env.WEBHOOK_PROJECT_CONCURRENCY,
      secretKeys: env.WEBHOOK_SECRET_KEYS,
    },
    quotas: {
      rulesPerProject: env.QUOTA_RULES_PER_PROJECT,
      webhooksPerProject: env.QUOTA_WEBHOOKS_PER_PROJECT,
      devicesPerProject: env.QUOTA_DEVICES_PER_PROJECT,
    },
    telemetryReads: {
      aggregateMaxDays: env.TELEMETRY_AGGREGATE_MAX_DAYS,
      aggregateMaxRows: env.TELEMETRY_AGGREGATE_MAX_ROWS,
      pageMaxBytes: env.TELEMETRY_PAGE_MAX_BYTES,
      perProject: env.TELEMETRY_READS_PER_PROJECT,
    },
    reminders: { minIntervalSeconds: env.REMINDER_MIN_INTERVAL_SECONDS },
    offline: {
      minSeconds: env.OFFLINE_MIN_SECONDS,
      scanIntervalMs: env.OFFLINE_SCAN_INTERVAL_MS,
    },
    backtest: {
      maxReadings: env.BACKTEST_MAX_READINGS,
      maxDevices: env.BACKTEST_MAX_DEVICES,
    },
    telemetryStorage: {
      partitionInterval: env.TELEMETRY_PARTITION_INTERVAL,
      retentionDays: env.TELEMETRY_RETENTION_DAYS,
    },
    worker: {
      port: env.WORKER_PORT,
      concurrency: env.WORKER_CONCURRENCY,
      shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
      lockDurationMs: env.QUEUE_LOCK_DURATION_MS,
      roles: parseWorkerRoles(env.WORKER_QUEUES),
      roleConcurrency: {
        ingest: env.WORKER_CONCURRENCY_INGEST || env.WORKER_CONCURRENCY,
        evaluate: env.WORKER_CONCURRENCY_EVALUATE || env.WORKER_CONCURRENCY,
        'alert-events': env.WORKER_CONCURRENCY_ALERT_EVENTS || env.WORKER_CONCURRENCY,
        deliver: env.WEBHOOK_CONCURRENCY,
      },
    },
    queue: { attempts: env.QUEUE_ATTEMPTS, backoffMs: env.QUEUE_BACKOFF_MS },
    ingest: {
      backlogMaxJobs: env.INGEST_BACKLOG_MAX_JOBS,
      backlogMaxBytes: env.INGEST_BACKLOG_MAX_BYTES,
      projectMaxJobs: env.INGEST_BACKLOG_PROJECT_MAX_JOBS,
      projectMaxBytes: env.INGEST_BACKLOG_PROJECT_MAX_BYTES,
    },
  };
}

function parseTrustProxy(value: string): boolean | number | string {
  const v = value.trim();
  if (v === 'true') return true;
  if (v === 'false' || v === '') return false;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}

/** Reads and validates the environment; throws `ConfigValidationError` naming every bad variable. */
export function loadConfig(
  overrides: EnvSource = {},
  opts: { requireAdminToken?: boolean } = {},
): AppConfig {
  return toAppConfig(validateEnv(readEnv(overrides), opts));
}
