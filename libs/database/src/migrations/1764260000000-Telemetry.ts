import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One row per event, `data` as jsonb (see docs/telemetry-schema.md for the measurements
 * behind this shape). The primary key (device_id, ts) is the replay guard (`ON CONFLICT
 * DO NOTHING`), the newest-first/oldest-first read path, and the "last N readings of a
 * device" path of rule evaluation, all in one index.
 *
 * No foreign key to devices: it would add a per-row trigger and index probe to every
 * bulk insert, and devices are never deleted through the API.
 */
export class Telemetry1764260000000 implements MigrationInterface {
  name = 'Telemetry1764260000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE telemetry (
        device_id uuid NOT NULL,
        ts timestamptz(3) NOT NULL,
        data jsonb NOT NULL,
        PRIMARY KEY (device_id, ts)
      )`);
    // The sequence number of the last batch applied for the device: batches are applied
    // in the order the api accepted them (see BatchStoreService).
    await q.query(`ALTER TABLE devices ADD COLUMN ingest_seq bigint NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE devices DROP COLUMN ingest_seq`);
    await q.query(`DROP TABLE telemetry`);
  }
}
