/**
 * npm run bench:rules (second half) — the ingest benchmark against a running stack, with
 * 0 and then 10 rules per device, alternated so both see the same machine state. Reports
 * stored and evaluated events/s and the drop that 10 rules cause.
 */
import { Client } from 'pg';
import { API, DATABASE_URL, int, machine } from './common';
import { BATCHES, batchBody, DEVICES, endToEnd } from './ingest.bench';

const ROUNDS = int('BENCH_ROUNDS', 3);

async function tenRules({ projectId, key }: { projectId: string; key: string }): Promise<void> {
  const ops = ['>', '>=', '<', '<=', '==', '!='];
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${API}/projects/${projectId}/rules`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: `rule ${i}`,
        metric: i % 2 ? 'temperature' : 'humidity',
        operator: ops[i % ops.length],
        threshold: i % 2 ? 25 : 43,
        window_n: 100,
        required_k: 10,
        cooldown_seconds: 60,
      }),
    });
    if (res.status !== 201) throw new Error(`POST rules: ${res.status} ${await res.text()}`);
  }
}

async function main(): Promise<void> {
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const bodies = Array.from({ length: BATCHES }, (_, i) =>
    batchBody(i % DEVICES, Math.floor(i / DEVICES)),
  );
  const rows: string[] = [];
  const sums = { base: 0, rules: 0, baseEval: 0, rulesEval: 0 };
  // One discarded round first: the JIT and PostgreSQL's caches warm up on it.
  await endToEnd(db, bodies, tenRules);
  for (let round = 0; round < ROUNDS; round++) {
    const base = await endToEnd(db, bodies);
    const rules = await endToEnd(db, bodies, tenRules);
    sums.base += base.storedPerSec;
    sums.rules += rules.storedPerSec;
    sums.baseEval += base.evaluatedPerSec;
    sums.rulesEval += rules.evaluatedPerSec;
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    rows.push(
      `round ${round + 1}: 0 rules stored ${f(base.storedPerSec)} / evaluated ${f(base.evaluatedPerSec)} events/s; ` +
        `10 rules stored ${f(rules.storedPerSec)} / evaluated ${f(rules.evaluatedPerSec)} events/s`,
    );
  }
  await db.end();
  console.log(`machine      ${machine()}`);
  console.log(
    `workload     ${DEVICES} devices, ${BATCHES} batches × 5000 events per run, ${ROUNDS} rounds`,
  );
  rows.forEach((r) => console.log(r));
  console.log(
    `drop (stored, 10 rules vs none)             ${((1 - sums.rules / sums.base) * 100).toFixed(1)}%`,
  );
  console.log(
    `drop (stored and evaluated, 10 rules vs none) ${((1 - sums.rulesEval / sums.baseEval) * 100).toFixed(1)}%`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
