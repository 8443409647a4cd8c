import { setFlagsFromString } from 'node:v8';
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

/** How far V8 lets the old generation grow past its live size before the next full GC. */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Gives the api and the worker a heap that grows to twice its live size between full
 * collections, unless the command line sets `--heap-growing-percent` itself (then that
 * wins; returns false).
 *
 * Why: on a small heap that it collects fast, V8 sets the next full collection at about
 * 1.2 × the live size, and it counts the ArrayBuffers allocated since the last one against
 * that room (external memory: each request body's socket reads and the body itself, about
 * twice the body's size). With ~45 MB live, the api started a mark-compact every ~8 MB of
 * bodies with no young collection between: 2-3 a second at half load, each a 10-20 ms
 * pause plus marking steps of up to 20 ms, which the requests and jobs in flight waited
 * out. At twice the live size the api runs ~8× fewer, the worker 3-5× fewer
 * (docs/benchmarks.md, "Full collections paced by request bodies"). The flag is not one
 * NODE_OPTIONS accepts, hence this call before the application starts.
 */
export function tuneHeap(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
