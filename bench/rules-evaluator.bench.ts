/**
 * npx ts-node --transpile-only -r tsconfig-paths/register bench/rules-evaluator.bench.ts
 *
 * In-memory cost of the k-of-n rule evaluator: one device, 1 / 10 / 100 rules (windowN 100,
 * requiredK 10, random operators and thresholds), fed 5,000-reading batches one after another
 * with the state carried between batches, as the worker does. No database, no queue: this is
 * the CPU floor of rule evaluation. `10 rules, hysteresis` is `10 rules` with a clear
 * condition: compare the two rows for its cost. The suite runs once untimed (JIT warm-up), then each
 * configuration gets 5 warm-up batches and 30 timed ones. Deterministic input (seeded PRNG);
 * timings are not.
 */
import { cpus } from 'node:os';
import {
  EvaluationState,
  OPERATORS,
  Reading,
  RuleSpec,
  emptyState,
  evaluate,
} from '@app/rules/evaluator';
import { prng } from './common';

const BATCH = 5000;
const WARMUP_BATCHES = 5;
const MEASURED_BATCHES = 30;
const RULE_COUNTS = [1, 10, 100];
const T0 = Date.UTC(2025, 0, 1);

/** One device's stream: a slow wave plus noise, integer-valued, 2% without the metric. */
function makeBatches(count: number, rand: () => number): Reading[][] {
  const batches: Reading[][] = [];
  let n = 0;
  for (let b = 0; b < count; b++) {
    const batch: Reading[] = new Array<Reading>(BATCH);
    for (let i = 0; i < BATCH; i++, n++) {
      const ts = T0 + n * 1000;
      const temperature = Math.round(50 + 30 * Math.sin(n / 500) + (rand() - 0.5) * 40);
      batch[i] =
        rand() < 0.02
          ? { ts, data: { humidity: 40, door: 'open' } }
          : { ts, data: { temperature, humidity: 40, door: 'closed' } };
    }
    batches.push(batch);
  }
  return batches;
}

function makeRules(count: number, windowN: number, rand: () => number): RuleSpec[] {
  return Array.from({ length: count }, () => ({
    metric: 'temperature',
    operator: OPERATORS[Math.floor(rand() * OPERATORS.length)],
    threshold: Math.round(20 + rand() * 60),
    windowN,
    requiredK: 10,
    cooldownSeconds: Math.floor(rand() * 600),
  }));
}

interface Row {
  label: string;
  nsPerReadingPerRule: number;
  readingsPerSecPerDevice: number;
  msPerBatch: number;
  transitions: number;
}

function run(label: string, rules: RuleSpec[], batches: Reading[][]): Row {
  const states: EvaluationState[] = rules.map(() => emptyState());
  let transitions = 0;
  const feed = (batch: Reading[]) => {
    for (let r = 0; r < rules.length; r++) {
      const res = evaluate(rules[r], states[r], batch);
      states[r] = res.state;
      transitions += res.transitions.length;
    }
  };
  for (let b = 0; b < WARMUP_BATCHES; b++) feed(batches[b]);
  transitions = 0;
  const started = process.hrtime.bigint();
  for (let b = WARMUP_BATCHES; b < batches.length; b++) feed(batches[b]);
  const ns = Number(process.hrtime.bigint() - started);
  const readings = (batches.length - WARMUP_BATCHES) * BATCH;
  return {
    label,
    nsPerReadingPerRule: ns / (readings * rules.length),
    readingsPerSecPerDevice: readings / (ns / 1e9),
    msPerBatch: ns / 1e6 / (batches.length - WARMUP_BATCHES),
    transitions,
  };
}

function main(): void {
  const c = cpus();
  console.log(`machine: ${c[0]?.model ?? 'unknown cpu'} × ${c.length}, node ${process.version}`);
  console.log(
    `batches: ${WARMUP_BATCHES} warm-up + ${MEASURED_BATCHES} measured × ${BATCH} readings, one device`,
  );
  const batches = makeBatches(WARMUP_BATCHES + MEASURED_BATCHES, prng(1));
  const configs: Array<[string, () => RuleSpec[]]> = RULE_COUNTS.map((n) => [
    `${n} rule${n === 1 ? '' : 's'}, N=100 K=10`,
    () => makeRules(n, 100, prng(1000 + n)),
  ]);
  // A 10× longer window: the per-reading work is O(1); what grows is the O(windowN) window
  // load/store once per call and the window copied into each open transition.
  configs.push(['10 rules, N=1000 K=10', () => makeRules(10, 1000, prng(2010))]);
  // Hysteresis: the same 10 rules with a clear threshold 5 back from theirs (== and != take
  // clear_k instead) and clear_k 20: a second running count per reading.
  configs.push([
    '10 rules, hysteresis',
    () =>
      makeRules(10, 100, prng(1010)).map((r) => ({
        ...r,
        clearThreshold:
          r.operator === '==' || r.operator === '!='
            ? null
            : r.operator.startsWith('>')
              ? r.threshold - 5
              : r.threshold + 5,
        clearK: 20,
      })),
  ]);

  // JIT warm-up: the whole suite once, untimed (the first few hundred calls run unoptimised).
  for (const [label, rules] of configs) run(label, rules(), batches);
  const rows = configs.map(([label, rules]) => run(label, rules(), batches));

  const pad = (s: string, w: number) => s.padStart(w);
  console.log(
    `${'rules per device'.padEnd(24)}${pad('ns/reading/rule', 17)}${pad('readings/s/device', 19)}${pad('ms/batch', 10)}${pad('transitions', 13)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(24)}${pad(r.nsPerReadingPerRule.toFixed(1), 17)}${pad(Math.round(r.readingsPerSecPerDevice).toLocaleString('en-US'), 19)}${pad(r.msPerBatch.toFixed(2), 10)}${pad(String(r.transitions), 13)}`,
    );
  }
}

main();
