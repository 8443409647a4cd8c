/**
 * `work`, or a rejection with "`what` within `ms` ms" if it has not settled by then. The
 * work itself goes on (a promise can't be cancelled); the caller stops waiting for it.
 */
export async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what = 'no answer',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
