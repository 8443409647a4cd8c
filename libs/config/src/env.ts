import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The one place that touches `process.env`. Everything else receives a validated
 * {@link AppConfig} (see `config.ts`), so a typo in a variable name cannot hide in a
 * corner of the code base. ESLint forbids `process.env` outside this library.
 */
export type EnvSource = Record<string, string | undefined>;

/** Reads `.env` (if present) without overriding variables already set in the process. */
export function readEnv(
  overrides: EnvSource = {},
  envFile = resolve(process.cwd(), '.env'),
): EnvSource {
  const fromFile = existsSync(envFile) ? parseDotEnv(readFileSync(envFile, 'utf8')) : {};
  return { ...fromFile, ...process.env, ...dropUndefined(overrides) };
}

/** Sets variables for child processes (test harness, CLI scripts). */
export function writeEnv(values: EnvSource): void {
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
}

function dropUndefined(values: EnvSource): EnvSource {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** Minimal `.env` parser: `KEY=value`, optional quotes, `#` comments. */
export function parseDotEnv(text: string): EnvSource {
  const out: EnvSource = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2];
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2];
    else value = value.replace(/\s+#.*$/, '');
    out[match[1]] = value;
  }
  return out;
}
