import { Client } from 'pg';

/**
 * Tells whether anything wrote to a database between two points, cheaply enough to ask
 * around every request of a fuzz run.
 *
 * The cheap question is PostgreSQL's: the current snapshot (`pg_current_snapshot()`: the
 * oldest transaction still running, one past the newest finished, and those in between
 * still running) stays the same only while no transaction that took an id (every one
 * that writes, or locks a row) starts or ends, on the whole server. When it is the same,
 * no row changed. When it is not (this database's writes, or any other database's), the
 * expensive question settles it: a fingerprint of every table's rows (count and a sum of
 * row hashes; a partitioned table through its parent) compared with the one taken after
 * the last change.
 */
export class RowWatch {
  private tables: string[] = [];
  private snapshot = '';
  private fingerprint = new Map<string, string>();

  /**
   * @param ignore columns that change by design without a client's write (e.g.
   * `api_keys.last_used_at`, written in the background when a key is used): `table.column`.
   */
  constructor(
    private readonly db: Client,
    private readonly ignore: string[] = [],
  ) {}

  async start(): Promise<void> {
    const { rows } = await this.db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY 1`,
    );
    this.tables = rows.map((r) => r.name);
    await this.settle();
  }

  /** Takes the current state as the reference: after a request allowed to write. */
  async settle(): Promise<void> {
    const snapshot = await this.currentSnapshot();
    if (snapshot === this.snapshot) return;
    this.snapshot = snapshot;
    this.fingerprint = await this.fingerprints();
  }

  /** The tables whose rows differ from the reference (and re-takes it); [] if none. */
  async changed(): Promise<string[]> {
    const snapshot = await this.currentSnapshot();
    if (snapshot === this.snapshot) return [];
    const now = await this.fingerprints();
    const changed = this.tables.filter((t) => now.get(t) !== this.fingerprint.get(t));
    this.snapshot = snapshot;
    this.fingerprint = now;
    return changed;
  }

  private async currentSnapshot(): Promise<string> {
    const { rows } = await this.db.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s');
    return rows[0].s;
  }

  private async fingerprints(): Promise<Map<string, string>> {
    const parts = this.tables.map((t) => {
      const dropped = this.ignore
        .filter((c) => c.startsWith(`${t}.`))
        .map((c) => ` - '${c.slice(t.length + 1)}'`)
        .join('');
      return `SELECT '${t}' AS t, count(*)::text || ':' || coalesce(sum(hashtext((to_jsonb(x)${dropped})::text)::bigint), 0)::text AS f FROM "${t}" x`;
    });
    const { rows } = await this.db.query<{ t: string; f: string }>(parts.join(' UNION ALL '));
    return new Map(rows.map((r) => [r.t, r.f]));
  }
}
