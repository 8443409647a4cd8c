/**
 * npx ts-node --transpile-only -r tsconfig-paths/register bench/body-readers.bench.ts
 *
 * CPU per 5,000-event body of the two readers that work on a body's bytes: the worker's
 * `cutBatch` (rows for COPY plus, with rule metrics, the readings the evaluator needs) and
 * the api's `readPlainBatch` (validation of a plain body without building objects), each
 * against `JSON.parse` of the same body in the same run, as a ratio, because timings on a
 * shared machine drift. Twenty distinct bodies; each case warmed up, then the median of its
 * rounds. Deterministic input; timings are not.
 */
import { cpus } from 'node:os';
import { cutBatch } from '@app/telemetry/cut-batch';
import { readPlainBatch } from '@app/telemetry/plain-batch';

const EVENTS = 5000;
const T0 = Date.UTC(2025, 0, 1);
const DEVICE = '00000000-0000-4000-8000-000000000001';

function body(batch: number): Buffer {
  const events = Array.from({ length: EVENTS }, (_, i) => {
    const n = batch * EVENTS + i;
    return {
      ts: new Date(T0 + n * 1000).toISOString(),
      data: { temperature: 20 + (n % 100) / 10, humidity: 40 + (n % 7) },
    };
  });
  return Buffer.from(JSON.stringify({ device_external_id: 'dev-1', events }));
}

let sink = 0;

/** Median ms per body over `rounds` passes through every body, after three untimed passes. */
function perBody(bodies: Buffer[], fn: (b: Buffer) => unknown, rounds = 15): number {
  for (let r = 0; r < 3; r++) for (const b of bodies) sink += fn(b) ? 1 : 0;
  const ms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const started = process.hrtime.bigint();
    for (const b of bodies) sink += fn(b) ? 1 : 0;
    ms.push(Number(process.hrtime.bigint() - started) / 1e6 / bodies.length);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

function main(): void {
  const c = cpus();
  console.log(`machine: ${c[0]?.model ?? 'unknown cpu'} × ${c.length}, node ${process.version}`);
  const bodies = Array.from({ length: 20 }, (_, i) => body(i));
  const baseline = perBody(bodies, (b) => JSON.parse(b.toString('latin1')));
  const cases: Array<[string, (b: Buffer) => unknown]> = [
    [
      'cutBatch, rule metrics temperature+end',
      (b) => cutBatch(b, DEVICE, null, ['temperature', 'end']),
    ],
    ['cutBatch, no rule metrics', (b) => cutBatch(b, DEVICE, null)],
    ['readPlainBatch', (b) => readPlainBatch(b)],
  ];
  console.log(
    `JSON.parse of the body (baseline): ${baseline.toFixed(2)} ms per ${EVENTS}-event body`,
  );
  for (const [label, fn] of cases) {
    const ms = perBody(bodies, fn);
    console.log(
      `${label.padEnd(40)} ${ms.toFixed(2)} ms  ${(ms / baseline).toFixed(2)} × JSON.parse`,
    );
  }
  if (sink < 0) console.log(sink);
}

main();
