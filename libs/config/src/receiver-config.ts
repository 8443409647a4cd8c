import { isIP } from 'node:net';
import { EnvSource, readEnv } from './env';
import { ConfigValidationError, LOG_FORMATS, LogFormatSetting } from './env.validation';

/**
 * Configuration of `apps/receiver`, the local webhook receiver. It is a development tool
 * with its own small environment: it needs no ADMIN_TOKEN, PostgreSQL or Redis, so it is
 * validated apart from `AppConfig`.
 */
export interface ReceiverConfig {
  port: number;
  host: string;
  /** Standard Webhooks signing secrets (`whsec_<base64>`), in the order given. */
  secrets: string[];
  logLevel: string;
  logFormat: LogFormatSetting;
  /** `NODE_ENV` as given (not required here): what `LOG_FORMAT=auto` goes by. */
  env?: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * A Standard Webhooks secret: optional `whsec_` prefix, then padded base64 (what the
 * `standardwebhooks` package decodes). Exported so the receiver checks secrets added at
 * runtime by the same rule.
 */
export function isWebhookSecret(value: string): boolean {
  const key = value.startsWith('whsec_') ? value.slice('whsec_'.length) : value;
  return key.length > 0 && key.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(key);
}

/** `RECEIVER_SECRETS` is a comma- and/or space-separated list. */
export function parseSecretList(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s !== '');
}

/**
 * Reads and validates `RECEIVER_PORT` (default 9000), `RECEIVER_HOST` (default
 * 127.0.0.1: only this machine; containers set 0.0.0.0), `RECEIVER_SECRETS` and
 * `LOG_LEVEL`, `LOG_FORMAT` (and `NODE_ENV`, unchecked, for its `auto`). Throws `ConfigValidationError` naming every bad variable (never echoing a
 * secret). An empty variable means its default, as everywhere else.
 */
export function loadReceiverConfig(overrides: EnvSource = {}): ReceiverConfig {
  const env = readEnv(overrides);
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const problems: string[] = [];

  const rawPort = value('RECEIVER_PORT') ?? '9000';
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    problems.push(`RECEIVER_PORT: must be a port number 0-65535, got "${rawPort}"`);
  }

  const host = value('RECEIVER_HOST') ?? '127.0.0.1';
  if (!isIP(host) && !HOSTNAME_RE.test(host)) {
    problems.push(`RECEIVER_HOST: must be an IP address or a host name, got "${host}"`);
  }

  const secrets = parseSecretList(value('RECEIVER_SECRETS') ?? '');
  const badSecrets = secrets
    .map((secret, index) => (isWebhookSecret(secret) ? null : index))
    .filter((index): index is number => index !== null);
  if (badSecrets.length > 0) {
    problems.push(
      `RECEIVER_SECRETS: entr${badSecrets.length === 1 ? 'y' : 'ies'} ${badSecrets.join(', ')} ` +
        '(0-based) must be whsec_ followed by padded base64',
    );
  }

  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`);
  }

  const logFormat = (value('LOG_FORMAT') ?? 'auto') as LogFormatSetting;
  if (!LOG_FORMATS.includes(logFormat)) {
    problems.push(`LOG_FORMAT: must be one of ${LOG_FORMATS.join(', ')}`);
  }

  if (problems.length > 0) throw new ConfigValidationError(problems.sort());
  return { port, host, secrets, logLevel, logFormat, env: value('NODE_ENV') };
}

/** {@link loadReceiverConfig} for `main.ts`: one line on stderr and exit 1 on a bad environment. */
export function loadReceiverConfigOrExit(processName = 'receiver'): ReceiverConfig {
  try {
    return loadReceiverConfig();
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${processName}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
