import type { MigrationInterface, QueryRunner } from 'typeorm';

const INDEX = 'alert_events_undispatched_alert_idx';

/**
 * An index on the alert of each event not yet fanned out: the evaluation that writes an
 * alert's events fans them out in its own transaction (docs/webhooks.md) and finds them by
 * alert. Without it that lookup went through `alert_events_pending_idx`, whose entries of
 * events dispatched since the last vacuum it visited one heap page each: 2 ms per batch
 * that opened an alert after 4,000 events, growing with the traffic between vacuums.
 *
 * Built CONCURRENTLY (writes go on while it builds), so outside a transaction. A build
 * cut short leaves an invalid index behind, which a run finds and builds again. Bounded by
 * `migrate`'s statement timeout (`DATABASE_STATEMENT_TIMEOUT_MS`): raise it for a large
 * `alert_events`.
 */
export class UndispatchedEventsByAlert1764390000000 implements MigrationInterface {
  name = 'UndispatchedEventsByAlert1764390000000';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    // The index of that name where the migration puts it (the search path's schema).
    const [existing] = (await q.query(
      `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)`,
      [INDEX],
    )) as Array<{ valid: boolean }>;
    if (existing?.valid) return;
    if (existing) await q.query(`DROP INDEX CONCURRENTLY ${INDEX}`);
    await q.query(
      `CREATE INDEX CONCURRENTLY ${INDEX} ON alert_events (alert_id) WHERE dispatched_at IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${INDEX}`);
  }
}
