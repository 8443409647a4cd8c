/**
 * npx ts-node --transpile-only -r tsconfig-paths/register bench/ingest-validator.bench.ts
 *
 * Event-loop cost of `needsNormalising` (run over every raw `POST /telemetry` body) against
 * the regex it replaced, in the same run: (a) a typical 5,000-event body, (b) an ~8 MiB
 * array of 299-digit integers, where the old pattern backtracked through every digit run
 * (seconds of blocked event loop per request). Also the per-batch offset pass that
 * `validateIngestBody` adds, and the timestamp check of every event against the `Date.parse`
 * it replaced. Each case is warmed up, then the median of its timed runs is
 * reported. Deterministic input; timings are not.
 */
import { cpus } from 'node:os';
import { timestampMs } from '@app/common';
import { timestampMsWithDateParse } from '@app/testing/timestamp-oracle';
import { needsNormalising, pgAcceptsOffset } from '@app/telemetry/ingest-validator';

const OLD_EXTREME_NUMBER = /[eE][+-]?\d{3}|\d{300}/;
const oldNeedsNormalising = (raw: string) => OLD_EXTREME_NUMBER.test(raw);

const EVENTS = 5000;
const T0 = Date.UTC(2025, 0, 1);

function typicalBody(): string {
  const events = Array.from({ length: EVENTS }, (_, i) => ({
    ts: new Date(T0 + i * 1000).toISOString(),
    data: { temperature: 21.53 + (i % 10) / 100, humidity: 40.1 },
  }));
  return JSON.stringify({ device_external_id: 'd', events });
}

function digitRunsBody(bytes: number): string {
  const n = '1234567890'.repeat(30).slice(0, 299);
  return `[${Array.from({ length: Math.floor(bytes / 300) }, () => n).join(',')}]`;
}

let sink = 0;

/** Median wall time of `runs` calls, in ms, after `warmup` untimed ones. */
function time(fn: () => boolean, warmup: number, runs: number): number {
  for (let i = 0; i < warmup; i++) sink += fn() ? 1 : 0;
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    sink += fn() ? 1 : 0;
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

function main(): void {
  const c = cpus();
  console.log(`machine: ${c[0]?.model ?? 'unknown cpu'} × ${c.length}, node ${process.version}`);
  const typical = typicalBody();
  const digits = digitRunsBody(8 * 2 ** 20);
  const cases: Array<[string, string, number, number, number]> = [
    // label, body, warm-up, runs (new), runs (old): the old regex takes seconds on (b)
    [`(a) typical, ${EVENTS} events`, typical, 50, 200, 200],
    ['(b) 299-digit integers', digits, 2, 10, 3],
  ];
  const pad = (s: string, w: number) => s.padStart(w);
  console.log(
    `${'body'.padEnd(30)}${pad('size', 10)}${pad('old regex ms', 14)}${pad('new scan ms', 13)}${pad('new ÷ old', 11)}`,
  );
  for (const [label, body, warmup, runsNew, runsOld] of cases) {
    // Neither body needs normalising: both functions scan to the end.
    if (needsNormalising(body)) throw new Error(`${label}: unexpected verdict`);
    const oldMs = time(() => oldNeedsNormalising(body), Math.min(warmup, 2), runsOld);
    const newMs = time(() => needsNormalising(body), warmup, runsNew);
    const size = `${(body.length / 2 ** 20).toFixed(2)} MiB`;
    console.log(
      `${label.padEnd(30)}${pad(size, 10)}${pad(oldMs.toFixed(3), 14)}${pad(newMs.toFixed(3), 13)}${pad((newMs / oldMs).toFixed(3), 11)}`,
    );
  }

  // The pass validateIngestBody adds to every accepted batch.
  const events = (JSON.parse(typical) as { events: { ts: string }[] }).events;
  const offsetMs = time(
    () => {
      let refused = false;
      for (const e of events) if (!pgAcceptsOffset(e.ts)) refused = true;
      return refused;
    },
    50,
    200,
  );
  console.log(`offset pass over ${EVENTS} events: ${offsetMs.toFixed(3)} ms`);

  // The timestamp check of every event (api and worker): the fields' instant worked out
  // against the Date.parse of the whole string it replaced, same checks otherwise.
  const check = (ms: (ts: string) => number) => () => {
    let sum = 0;
    for (const e of events) sum += ms(e.ts);
    return Number.isNaN(sum);
  };
  const parseMs = time(check(timestampMsWithDateParse), 50, 200);
  const fieldsMs = time(check(timestampMs), 50, 200);
  console.log(
    `timestamp check over ${EVENTS} events: Date.parse ${parseMs.toFixed(3)} ms, fields ${fieldsMs.toFixed(3)} ms, fields ÷ Date.parse ${(fieldsMs / parseMs).toFixed(3)}`,
  );
  if (sink < 0) console.log(sink);
}

main();
