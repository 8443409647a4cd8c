import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Hysteresis per rule (docs/rules.md): `clear_threshold`, the value a reading must be back
 * across to count as clear, and `clear_k`, how many clear readings of the window resolve an
 * open alert. Both nullable, without a default: existing rules resolve as before, and adding
 * them rewrites nothing. The direction of `clear_threshold` against the operator is checked
 * by the api, where a 422 can name it.
 */
export class RuleHysteresis1764350000000 implements MigrationInterface {
  name = 'RuleHysteresis1764350000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE rules
        ADD COLUMN clear_threshold double precision
          CONSTRAINT rules_clear_threshold_check
          CHECK (clear_threshold NOT IN ('NaN', 'Infinity', '-Infinity')),
        ADD COLUMN clear_k integer
          CONSTRAINT rules_clear_k_check CHECK (clear_k >= 1 AND clear_k <= window_n)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE rules DROP COLUMN clear_threshold, DROP COLUMN clear_k`);
  }
}
