import { AppConfig, loadConfig } from './config';
import { ConfigValidationError } from './env.validation';

/**
 * Loads the configuration for a process entry point. On a bad environment it prints one
 * line naming every offending variable and exits with status 1 (no stack trace: the
 * operator needs the list, not our call graph).
 */
export function loadConfigOrExit(
  processName: string,
  opts: { requireAdminToken?: boolean } = {},
): AppConfig {
  try {
    return loadConfig({}, opts);
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${processName}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
