import { parse } from 'dotenv';
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

/** A `.env` file's variables (dotenv's syntax: quotes, `#` comments, `export`, multi-line). */
export function parseDotEnv(text: string): EnvSource {
  return parse(text);
}
