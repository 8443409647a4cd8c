/**
 * npm run bench:insert — the statement that stores a batch, alone: the worker's fast path
 * (TelemetryRepository.insertBatch: a COPY of the events cut from the body), the plain
 * INSERT from jsonb_to_recordset it replaced (still the first try of a body it cannot cut)
 * and the deduplicating statement it falls back to, each against one COPY stream per batch
 * of rows serialised by the benchmark, in the same run,
 * on a scratch database (created and dropped here) with the telemetry table's layout.
 * Each batch is its own transaction, as in the worker; rounds alternate the four so that
 * drift on a noisy machine hits each alike.
 *
 * Knobs: BENCH_BATCHES (40), BENCH_EVENTS (5000 per batch), BENCH_ROUNDS (3).
 */
import { buildDataSourceOptions } from '@app/database';
import { TelemetryRepository } from '@app/telemetry';
import { PLAIN_INSERT } from '@app/telemetry/telemetry.repository';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DataSource } from 'typeorm';
import { DATABASE_URL, int, machine } from './common';

const BATCHES = int('BENCH_BATCHES', 40);
const EVENTS = int('BENCH_EVENTS', 5000);
const ROUNDS = int('BENCH_ROUNDS', 3);
const T0 = Date.UTC(2025, 0, 1);

function events(batch: number): Array<{ ts: string; data: Record<string, number> }> {
  return Array.from({ length: EVENTS }, (_, i) => {
    const n = batch * EVENTS + i;
    return {
      ts: new Date(T0 + n * 1000).toISOString(),
      data: { temperature: 20 + (n % 100) / 10, humidity: 40 + (n % 50) },
    };
  });
}

async function main(): Promise<void> {
  const scratch = `bench_insert_${randomUUID().slice(0, 8)}`;
  const admin = new Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${scratch}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${scratch}`;
  const db = new DataSource(buildDataSourceOptions({ url: url.href, poolSize: 1 }, 'bench-insert'));
  const copier = new Client({ connectionString: url.href });
  try {
    await db.initialize();
    // The layout of the telemetry table (migration 1764260000000).
    await db.query(
      `CREATE TABLE telemetry (device_id uuid NOT NULL, ts timestamptz(3) NOT NULL,
                               data jsonb NOT NULL, PRIMARY KEY (device_id, ts))`,
    );
    await copier.connect();
    const repo = new TelemetryRepository(db);
    const batches = Array.from({ length: BATCHES }, (_, b) => events(b));
    const payloads = batches.map((e) => JSON.stringify({ device_external_id: 'd', events: e }));
    const lines = batches.map((e) => e.map((r) => `\t${r.ts}\t${JSON.stringify(r.data)}\n`));

    const ways: Record<string, (device: string) => Promise<void>> = {
      copy: async (device) => {
        for (const l of lines) {
          const text = l.map((x) => device + x).join('');
          await copier.query('BEGIN');
          await pipeline(
            Readable.from([text]),
            copier.query(copyFrom('COPY telemetry (device_id, ts, data) FROM STDIN')),
          );
          await copier.query('COMMIT');
        }
      },
      'fast path (COPY cut)': async (device) => {
        for (const p of payloads)
          await db.transaction((em) => repo.insertBatch(em, device, p, null));
      },
      'plain INSERT (before)': async (device) => {
        for (const p of payloads) await db.transaction((em) => em.query(PLAIN_INSERT, [device, p]));
      },
      'deduplicating insert': async (device) => {
        for (const p of payloads)
          await db.transaction((em) => repo.insertDeduplicating(em, device, p, null));
      },
    };
    const rates: Record<string, number[]> = {};
    for (let round = 0; round < ROUNDS; round++)
      for (const [name, run] of Object.entries(ways)) {
        await db.query('TRUNCATE telemetry');
        await db.query('CHECKPOINT');
        const started = process.hrtime.bigint();
        await run(randomUUID());
        const s = Number(process.hrtime.bigint() - started) / 1e9;
        (rates[name] ??= []).push((BATCHES * EVENTS) / s);
      }
    console.log(`machine      ${machine()}`);
    console.log(
      `workload     ${BATCHES} batches × ${EVENTS} events, one transaction each, ${ROUNDS} rounds`,
    );
    for (const [name, r] of Object.entries(rates))
      console.log(
        `${name.padEnd(26)} ${r.map((x) => Math.round(x).toLocaleString('en-US')).join(' / ')} rows/s; ÷ COPY ${r
          .map((x, i) => (x / rates.copy[i]).toFixed(2))
          .join(' / ')}`,
      );
  } finally {
    await copier.end().catch(() => undefined);
    if (db.isInitialized) await db.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${scratch}`);
    await admin.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
