/**
 * Closes what a suite started, in order, and says which step hangs: a step still running
 * after `warnAfterMs` is reported on stderr (with the process's active resources) every
 * `warnAfterMs`, so a shutdown that never ends names its culprit instead of only timing
 * out the hook.
 */
export async function closeInOrder(
  steps: Array<[label: string, close: (() => Promise<unknown>) | undefined]>,
  warnAfterMs = 15000,
): Promise<void> {
  for (const [label, close] of steps) {
    if (!close) continue;
    const started = Date.now();
    const timer = setInterval(() => {
      const active: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) active[r] = (active[r] ?? 0) + 1;
      process.stderr.write(
        `[shutdown] "${label}" still closing after ${Date.now() - started} ms; active: ${JSON.stringify(active)}\n`,
      );
    }, warnAfterMs);
    try {
      await close();
    } finally {
      clearInterval(timer);
    }
  }
}
