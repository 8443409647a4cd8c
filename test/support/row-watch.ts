import { Client } from 'pg';

/**
 * Tells whether anything wrote to a database between two points, cheaply enough to ask
 * around every request of a fuzz run.
 *
 * The cheap question is PostgreSQL's: the next transaction id (`pg_snapshot_xmax`) moves
 * only when some transaction wrote (or took a row lock). When it hasn't moved, no row
 * changed. When it has (this database's writes, or any other database's on the server),
 * the expensive question settles it: a fingerprint of every table's rows (count and a
 * sum of row hashes) compared with the one taken after the last move.
 */
export class RowWatch {
  private tables: string[] = [];
  private xid = '';
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
    this.xid = await this.nextXid();
    this.fingerprint = await this.fingerprints();
  }

  /** The tables whose rows differ from the reference (and re-takes it); [] if none. */
  async changed(): Promise<string[]> {
    const xid = await this.nextXid();
    if (xid === this.xid) return [];
    const now = await this.fingerprints();
    const changed = this.tables.filter((t) => now.get(t) !== this.fingerprint.get(t));
    this.xid = xid;
    this.fingerprint = now;
    return changed;
  }

  private async nextXid(): Promise<string> {
    const { rows } = await this.db.query<{ x: string }>(
      'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x',
    );
    return rows[0].x;
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
