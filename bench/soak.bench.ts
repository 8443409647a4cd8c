/**
 * npm run bench:soak — a soak with chaos, self-contained: it starts its own PostgreSQL
 * cluster (migrated) and Redis (AOF, `appendfsync everysec`) on loopback ports
 * (test/support/private-services.ts), the api and BENCH_WORKERS worker processes (their
 * real `main.ts`, test/support/processes.ts) and a webhook receiver in this process, and
 * stops all of them at the end, on an error and on Ctrl-C.
 *
 * 1. Capacity: BENCH_CAPACITY_BATCHES 5,000-event batches from 4 devices as fast as they
 *    are taken, to a project with the soak's rule; stored events/s (first request → every
 *    batch applied).
 * 2. Load: BENCH_DEVICES devices of a project of their own (a 2-of-3 rule that opens and
 *    resolves an alert in every BENCH_ALERT_EVERY-th batch of a device, two webhooks to
 *    the receiver) send batches paced at BENCH_LOAD_FRACTION × capacity for BENCH_SOAK_S
 *    seconds. A device has one batch in flight at a time, in order, retried after
 *    `Retry-After` on 429 and 503 (and after 1 s when no answer came) until it is
 *    answered 202; a tick that finds every device busy is skipped, so the offered rate
 *    falls during a fault instead of piling up.
 * 3. Chaos: every BENCH_FAULT_EVERY_S (30-60, random, seeded by BENCH_SEED) one of:
 *    SIGKILL a worker (a replacement starts at once), an immediate (crash-like) PostgreSQL
 *    restart, a SIGKILL Redis restart; in a seeded order that has every kind in each three.
 *    None in the first BENCH_WARMUP_S or the last BENCH_TAIL_S.
 * 4. Every 10 s: accepted (202) and stored (batches applied) events/s, queue depths, the
 *    api's p99 for the window, 429/503 counts, RSS of the api and each worker, each
 *    worker's batches, their mean time and their waits for a predecessor, CPU used by the
 *    soak's processes and by everything else on the machine, PostgreSQL checkpoints.
 * 5. Drain, then check: every accepted event stored once and nothing else; alerts equal to
 *    the pure evaluator's over the stored readings; every alert event delivered to both
 *    webhooks (distinct webhook-id per webhook); each fault recovered (stored ≥ 90% of the
 *    pre-fault level and the queues back in their pre-fault bands, two windows running),
 *    and the queues so at the end of the load; each process's lowest RSS in its last
 *    minute ÷ in its second (≤ BENCH_RSS_MAX_RATIO); no failed job; no process exited by
 *    itself.
 *
 * Prints markdown tables (per window, per fault, checks) and PASS/FAIL lines, writes the
 * result as JSON to BENCH_OUT (/tmp/soak-<time>.json) and the processes' logs beside it,
 * and exits 1 on FAIL.
 *
 * Knobs: BENCH_SOAK_S (600), BENCH_LOAD_FRACTION (0.7), BENCH_FAULT_EVERY_S (30-60),
 * BENCH_SEED (random, printed), BENCH_FAULTS (worker,postgres,redis), BENCH_WORKERS (2),
 * BENCH_DEVICES (8), BENCH_CAPACITY_BATCHES (40), BENCH_WARMUP_S (20), BENCH_TAIL_S (60),
 * BENCH_PG_DOWN_MS (3000), BENCH_REDIS_DOWN_MS (3000), BENCH_DRAIN_S (300),
 * BENCH_RSS_MAX_RATIO (1.5), BENCH_ALERT_EVERY (5), BENCH_CAPACITY (events/s: skip the
 * measurement, to load several runs alike), BENCH_OUT.
 */
import { queuePrefix, redisOptionsFromUrl } from '@app/queue';
import { Queue } from 'bullmq';
import { writeFileSync } from 'node:fs';
import { Pool } from 'pg';
import { migratedDatabase, PrivatePostgres, PrivateRedis } from '../test/support/private-services';
import { machine, percentile, prng } from './common';
import {
  Check,
  checkAlerts,
  checkEvents,
  drain,
  faultTable,
  fmt,
  rssCheck,
  windowTable,
} from './soak-checks';
import {
  Fault,
  ingestDepth,
  inject,
  otherDepth,
  present,
  recoveries,
  Sample,
  Sampler,
  schedule,
} from './soak-sampler';
import {
  ALL_QUEUES,
  CAPACITY,
  CAPACITY_BATCHES,
  DEVICES,
  DRAIN_S,
  EVENTS,
  FAULT_KINDS,
  GAP_MAX_S,
  GAP_MIN_S,
  LOAD_FRACTION,
  now,
  OUT,
  PG_DOWN_MS,
  REDIS_DOWN_MS,
  REDIS_PREFIX,
  RULE,
  SAMPLE_S,
  SEED,
  sleep,
  SOAK_S,
  STARTED_AT,
  WARMUP_S,
  WEBHOOKS,
  WORKERS,
} from './soak-settings';
import { Clients, measureCapacity, Receiver, Stack, tenant } from './soak-stack';

async function main(): Promise<void> {
  const stack = new Stack();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping everything`);
    stack.killNow();
    // private-services' exit hook stops PostgreSQL and Redis and removes their files.
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => stack.killNow());

  const rand = prng(SEED);
  const plan = schedule(rand);
  console.log(`machine      ${machine()}`);
  console.log(
    `soak         ${SOAK_S} s at ${LOAD_FRACTION} × capacity, ${DEVICES} devices, ${WORKERS} workers, seed ${SEED}`,
  );
  console.log(
    `faults       every ${GAP_MIN_S}-${GAP_MAX_S} s: ${plan.map((p) => `${p.kind}@${p.atS}s`).join(', ') || 'none'}`,
  );

  const receiver = new Receiver();
  const queues: Queue[] = [];
  let db: Pool | undefined;
  let failed = false;
  try {
    await receiver.start();
    [stack.pg, stack.redis] = await Promise.all([
      PrivatePostgres.start(),
      PrivateRedis.start({ appendonly: true }),
    ]);
    stack.databaseUrl = await migratedDatabase(stack.pg, 'soak_test');
    db = new Pool({
      connectionString: stack.databaseUrl,
      max: 3,
      connectionTimeoutMillis: 3000,
      // The checks at the end read back every stored reading of the run.
      query_timeout: 600000,
    });
    db.on('error', () => undefined);
    for (const name of ALL_QUEUES) {
      const q = new Queue(name, {
        connection: redisOptionsFromUrl(stack.redis.url()),
        prefix: queuePrefix({ url: stack.redis.url(), prefix: REDIS_PREFIX }, name),
      });
      q.on('error', () => undefined);
      queues.push(q);
    }
    await stack.startApi();
    for (let i = 0; i < WORKERS; i++) await stack.startWorker();
    console.log(
      `stack        PostgreSQL :${stack.pg.port}, Redis :${stack.redis.port} (AOF), api ${stack.apiUrl}, ${WORKERS} workers, receiver ${receiver.url}`,
    );

    // 1. Capacity (or BENCH_CAPACITY, to load several runs alike).
    const capacity = CAPACITY ?? (await measureCapacity(stack, db));
    const offered = capacity * LOAD_FRACTION;
    const intervalMs = (EVENTS / offered) * 1000;
    console.log(
      `capacity     ${fmt(capacity)} events/s stored (${CAPACITY ? 'BENCH_CAPACITY' : `${CAPACITY_BATCHES} batches`}); offering ${fmt(offered)} events/s (a batch every ${fmt(intervalMs)} ms)`,
    );

    // 2-4. Load, chaos, samples.
    const t = await tenant(
      stack.apiUrl,
      'soak',
      WEBHOOKS.map((h) => `${receiver.url}${h}`),
    );
    const clients = new Clients(
      stack.apiUrl,
      t.key,
      Array.from({ length: DEVICES }, (_, i) => `soak-${i}`),
    );
    const loadStarted = now();
    const sampler = new Sampler(stack, db, queues, clients, t.projectId, () => receiver.requests);
    const elapsedS = () => (now() - loadStarted) / 1000;
    let loadOn = true;

    const load = (async () => {
      for (let k = 0; loadOn; k++) {
        const due = loadStarted + k * intervalMs;
        if (due > now()) await sleep(due - now());
        if (!loadOn || elapsedS() >= SOAK_S) break;
        clients.tick();
      }
    })();

    const faults: Fault[] = [];
    const chaos = (async () => {
      for (const [i, step] of plan.entries()) {
        const wait = step.atS * 1000 - (now() - loadStarted);
        if (wait > 0) await sleep(wait);
        if (!loadOn) return;
        const fault: Fault = {
          n: i + 1,
          kind: step.kind,
          atS: Math.round(elapsedS() * 10) / 10,
          target: '',
          tookMs: 0,
        };
        sampler.noteFault(`#${fault.n} ${step.kind}`);
        const started = now();
        try {
          fault.target = await inject(step.kind, stack, rand);
        } catch (err) {
          fault.error = (err as Error).message.split('\n')[0];
        }
        fault.tookMs = now() - started;
        faults.push(fault);
        console.log(
          `fault #${fault.n} at ${fmt(fault.atS, 1)} s: ${step.kind} ${fault.target}${fault.error ? ` FAILED: ${fault.error}` : ''} (${fmt(fault.tookMs)} ms)`,
        );
      }
    })();

    const report = (s: Sample) =>
      console.log(
        `  ${fmt(s.atS).padStart(4)} s ${s.phase === 'drain' ? 'drain ' : ''} accepted ${fmt(s.acceptedPerS).padStart(7)}/s  stored ${fmt(s.storedPerS).padStart(7)}/s  queues ${fmt(s.depths ? ingestDepth(s) : null).padStart(4)} + ${fmt(otherDepth(s)).padStart(4)}  webhooks ${fmt(s.deliveredPerS, 1).padStart(5)}/s  p99 ${fmt(s.apiP99Ms).padStart(6)} ms  429 ${s.s429}  503 ${s.s503}  cpu ${s.cpu ? `${s.cpu.ours.toFixed(1)}+${s.cpu.others.toFixed(1)}` : '–'}  ckpt ${fmt(s.checkpoints)}  ${Object.entries(
          s.workers,
        )
          .map(
            ([w, c]) =>
              `${w} ${c.batches}b/${fmt(c.meanMs)}ms${c.waits ? ` ${c.waits} waits` : ''}${c.waiting ? ` (${c.waiting} on deps)` : ''}`,
          )
          .join(' ')}  ${s.faults.join(', ')}`,
      );
    let k = 1;
    for (; k * SAMPLE_S <= SOAK_S; k++) {
      const due = loadStarted + k * SAMPLE_S * 1000;
      if (due > now()) await sleep(due - now());
      report(await sampler.take(k * SAMPLE_S, 'load'));
    }
    loadOn = false;
    await load;
    await chaos;
    const loadS = elapsedS();
    // The drain is sampled too: how the queues empty once the load stops.
    let draining = true;
    const drainSamples = (async () => {
      for (; draining; k++) {
        const due = loadStarted + k * SAMPLE_S * 1000;
        while (draining && due > now()) await sleep(Math.min(250, due - now()));
        if (!draining) return;
        report(await sampler.take(k * SAMPLE_S, 'drain'));
      }
    })();
    // Batches still being retried get until the drain deadline to be answered 202.
    const drainDeadline = now() + DRAIN_S * 1000;
    await clients.settle(DRAIN_S * 1000);
    const drained = await drain(db, queues, t, receiver, drainDeadline);
    draining = false;
    await drainSamples;
    console.log(
      `drain        ${drained.drainedS === null ? `NOT drained in ${DRAIN_S} s` : `${fmt(drained.drainedS, 1)} s`} (${drained.state})`,
    );

    // 5. Checks.
    recoveries(faults, sampler.samples);
    const checks: Check[] = [];
    checks.push({
      name: 'drained: queues empty, cursors at the last reading, no delivery pending',
      expected: `within ${DRAIN_S} s`,
      found: drained.drainedS === null ? `no: ${drained.state}` : `${fmt(drained.drainedS, 1)} s`,
      pass: drained.drainedS !== null,
    });
    checks.push(...(await checkEvents(db, t, clients)));
    const alerts = await checkAlerts(db, t, receiver);
    checks.push(...alerts.checks);
    const failedJobs = (await Promise.all(queues.map((q) => q.getJobCounts('failed')))).reduce(
      (a, c) => a + (c.failed ?? 0),
      0,
    );
    checks.push({
      name: 'failed jobs (all queues)',
      expected: '0',
      found: String(failedJobs),
      pass: failedJobs === 0,
    });
    const unrecovered = faults.filter((f) => f.recoveryS === null || f.error);
    checks.push({
      name: 'faults: each recovered (stored ≥ 90% of pre-fault, queues in band, 2 windows)',
      expected: `${faults.length} of ${faults.length}`,
      found: `${faults.length - unrecovered.length} of ${faults.length}; recovery ${faults.map((f) => (f.recoveryS === null ? '–' : `${f.recoveryS} s`)).join(', ')}`,
      pass: unrecovered.length === 0,
    });
    // Flat: the queues at the end of the load are where they were before the first fault.
    const loadSamples = sampler.samples.filter((s) => s.phase === 'load');
    const calm = loadSamples.filter(
      (s) => s.atS - SAMPLE_S >= WARMUP_S && (faults.length === 0 || s.atS <= faults[0].atS),
    );
    const endBands = [
      Math.max(0, ...present(calm.map(ingestDepth))) + DEVICES,
      Math.max(0, ...present(calm.map(otherDepth))) + 2 * DEVICES,
    ];
    const last = loadSamples[loadSamples.length - 1];
    const endDepths = last ? [ingestDepth(last), otherDepth(last)] : [null, null];
    checks.push({
      name: 'queue depth at the end of the load: ingest / other queues (flat)',
      expected: `≤ ${endBands[0]} / ≤ ${endBands[1]}`,
      found: endDepths.map((d) => fmt(d)).join(' / '),
      pass: endDepths.every((d, i) => d !== null && d <= endBands[i]),
    });
    checks.push(rssCheck(sampler.samples, stack.procs, loadStarted));
    checks.push({
      name: 'processes: none exited by itself',
      expected: '0',
      found: stack.crashes.length ? stack.crashes.join('; ') : '0',
      pass: stack.crashes.length === 0,
    });
    failed = checks.some((c) => !c.pass);
    const others = present(loadSamples.map((s) => s.cpu?.others ?? null));
    const noise = {
      windows: loadSamples.length,
      busy: others.filter((x) => x >= 0.5).length,
      maxOthers: Math.max(0, ...others),
    };

    const workerNames = stack.procs.filter((p) => p.role === 'worker').map((p) => p.name);
    const p99s = present(loadSamples.map((s) => s.apiP99Ms)).sort((a, b) => a - b);
    const verdict = (name: string) => checks.find((c) => c.name.startsWith(name));
    // One row per run, for docs/reliability.md.
    const summary = [
      '| run | capacity → offered (events/s) | accepted = stored, once | alerts as evaluated | deliveries (duplicates) | api p99, median window | recovery per fault (s) | RSS floor, last ÷ second minute | result |',
      '|---|---|---|---|---|---|---|---|---|',
      `| ${STARTED_AT.toISOString().slice(0, 16)}, ${fmt(loadS)} s, seed ${SEED} | ${fmt(capacity)} → ${fmt(offered)} | ${fmt(clients.acceptedEvents)}: ${verdict('events')?.pass ? 'yes' : 'NO'} | ${verdict('alerts')?.expected}: ${verdict('alerts')?.pass ? 'yes' : 'NO'} | ${verdict('deliveries')?.expected}: ${verdict('deliveries')?.pass ? 'all' : 'NOT all'} (${receiver.duplicates}) | ${fmt(percentile(p99s, 50))} ms | ${faults.map((f) => `${f.kind} ${f.recoveryS === null ? '–' : fmt(f.recoveryS)}`).join(', ')} | ${verdict('RSS')?.found} | ${failed ? 'FAIL' : 'PASS'} |`,
    ].join('\n');
    const checkTable = [
      '| check | expected | found | |',
      '|---|---|---|---|',
      ...checks.map(
        (c) => `| ${c.name} | ${c.expected} | ${c.found} | ${c.pass ? 'PASS' : 'FAIL'} |`,
      ),
    ].join('\n');

    console.log('\n### Per 10 s\n');
    console.log(windowTable(sampler.samples, workerNames));
    console.log('\n### Faults\n');
    console.log(faultTable(faults));
    console.log('\n### Checks\n');
    console.log(checkTable);
    console.log('\n### Run\n');
    console.log(summary);
    console.log('');
    for (const c of checks) console.log(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.found}`);
    if (noise.busy > 0)
      console.log(
        `NOTE  other work on the machine used ≥ 0.5 core in ${noise.busy} of ${noise.windows} load windows (up to ${noise.maxOthers.toFixed(1)} cores): throughput and recovery figures are not the stack's alone`,
      );

    const logs = stack.writeLogs(OUT.replace(/\.json$/, ''));
    writeFileSync(
      OUT,
      JSON.stringify(
        {
          startedAt: STARTED_AT.toISOString(),
          machine: machine(),
          settings: {
            soakS: SOAK_S,
            loadFraction: LOAD_FRACTION,
            seed: SEED,
            faultEveryS: [GAP_MIN_S, GAP_MAX_S],
            faultKinds: FAULT_KINDS,
            workers: WORKERS,
            devices: DEVICES,
            eventsPerBatch: EVENTS,
            pgDownMs: PG_DOWN_MS,
            redisDownMs: REDIS_DOWN_MS,
            rule: RULE,
            webhooks: WEBHOOKS.length,
          },
          capacityPerS: capacity,
          offeredPerS: offered,
          loadS,
          sentBatches: clients.sentBatches,
          skippedTicks: clients.skippedTicks,
          acceptedEvents: clients.acceptedEvents,
          expectedAlertEvents: alerts.expectedEvents,
          deliveriesReceived: receiver.requests,
          drain: drained,
          samples: sampler.samples,
          faults,
          checks,
          noise,
          pass: !failed,
          logs,
        },
        null,
        2,
      ),
    );
    console.log(`\nresult       ${OUT} (logs beside it)`);
    console.log(failed ? 'FAIL' : 'PASS');
  } catch (err) {
    failed = true;
    console.error(err);
    try {
      const logs = stack.writeLogs(OUT.replace(/\.json$/, ''));
      console.error(`logs: ${logs.join(', ')}`);
    } catch {
      // nothing more to say
    }
  } finally {
    await Promise.all(queues.map((q) => q.close().catch(() => undefined)));
    await db?.end().catch(() => undefined);
    await receiver.close();
    await stack.stop();
  }
  process.exit(failed ? 1 : 0);
}

void main();
