/**
 * At most `limit` runs at once per project, in this process; one more is refused at once
 * (never queued: a client told to retry costs nothing, a queue of waiting reads holds
 * sockets and memory). Pure: no Nest, no I/O.
 */
export class ProjectGate {
  private readonly running = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly refusal: (limit: number) => Error,
  ) {}

  async run<T>(projectId: string, fn: () => Promise<T>): Promise<T> {
    const now = this.running.get(projectId) ?? 0;
    if (now >= this.limit) throw this.refusal(this.limit);
    this.running.set(projectId, now + 1);
    try {
      return await fn();
    } finally {
      const left = (this.running.get(projectId) ?? 1) - 1;
      if (left === 0) this.running.delete(projectId);
      else this.running.set(projectId, left);
    }
  }

  /** Runs in flight for the project (for tests and metrics). */
  inFlight(projectId: string): number {
    return this.running.get(projectId) ?? 0;
  }
}
