import { Operator, RuleSpec } from '@app/rules';
import fc from 'fast-check';
import request from 'supertest';
import { OracleReading } from './alert-oracle';
import { FaultStack, Link } from './fault-stack';
import { sleep } from './fixtures';

/**
 * The model of test/integration/alert-oracle.int-spec.ts: devices that generate batches
 * of readings (in order, shuffled, with repeated timestamps, late, jumping ahead,
 * replayed), keep what the api refused and send it again before anything newer, and the
 * fast-check commands that drive them and the faults.
 */

/** Devices the commands send for; `bg` sends on its own all through a run. */
export const DEVICES = ['d0', 'd1'];
export const BACKGROUND = 'bg';
export const T0 = Date.UTC(2025, 3, 1);
export const EVENT_TYPES = ['alert.created', 'alert.resolved', 'alert.acknowledged'] as const;

// ---------------------------------------------------------------------------------------
// The model: what each device generated, in order, and what it still holds unaccepted.

/** A reading as the model keeps it: `ts` is the millisecond it is stored at. */
export interface SentReading extends OracleReading {
  /** The `ts` as sent: with microseconds when the event has an offset within its millisecond. */
  sent: string;
}

export interface Batch {
  serial: number;
  events: SentReading[];
}

export interface DeviceModel {
  name: string;
  /** The newest generated `ts` of fresh readings, in seconds after T0. */
  clock: number;
  /** Every batch generated, in the order the device sends them. */
  batches: Batch[];
  /** Batches not yet answered 202, oldest first: sent again before anything newer. */
  outbox: Batch[];
}

export interface RunStats {
  posts: number;
  accepted: number;
  refused: Record<string, number>;
  faults: string[];
  /** Commanded batches by shape. */
  shapes: Record<string, number>;
}

export class Model {
  serial = 0;
  readonly devices: DeviceModel[] = [...DEVICES, BACKGROUND].map((name) => ({
    name,
    clock: 0,
    batches: [],
    outbox: [],
  }));
  readonly stats: RunStats = { posts: 0, accepted: 0, refused: {}, faults: [], shapes: {} };
}

type Value = number | null | 'text';
interface EventSpec {
  v: Value;
  back: number;
  /** Microseconds off the reading's millisecond (|us| < 500: stored at that millisecond). */
  us: number;
}
type Shape = 'fresh' | 'shuffled' | 'dupes' | 'late' | 'ahead' | 'replay';

/**
 * `ts` with `us` microseconds added (|us| < 1000), at microsecond precision: PostgreSQL
 * stores it at the nearest millisecond (docs/telemetry-schema.md: "two readings of a
 * device within the same millisecond are the same reading").
 */
export function withMicros(ts: number, us: number): string {
  if (us === 0) return new Date(ts).toISOString();
  const micros = ts * 1000 + us;
  const ms = Math.floor(micros / 1000);
  const frac = String(micros - ms * 1000).padStart(3, '0');
  return new Date(ms).toISOString().replace(/Z$/, `${frac}Z`);
}

const reading = (s: number, v: Value, serial: number, i: number, us = 0): SentReading => ({
  ts: T0 + s * 1000,
  sent: withMicros(T0 + s * 1000, us),
  // `b`/`i` name the copy, so the check sees which copy of a `ts` was stored. A `null`
  // value is a reading without the metric, `text` one whose metric is a string.
  data: v === null ? { h: 1, b: serial, i } : { t: v === 'text' ? '9' : v, b: serial, i },
});

/** The readings a command means, from the device's state: deterministic, so it shrinks. */
function buildBatch(
  d: DeviceModel,
  serial: number,
  shape: Shape,
  specs: EventSpec[],
  pick: number,
): Batch {
  if (shape === 'replay' && d.batches.length > 0) {
    const original = d.batches[pick % d.batches.length];
    return { serial: original.serial, events: original.events };
  }
  const n = specs.length;
  let seconds: number[];
  switch (shape) {
    case 'late':
      // At or before what was sent: odd seconds fill holes, even ones collide.
      seconds = specs.map((e) => Math.max(1, d.clock - e.back));
      break;
    case 'ahead':
      seconds = specs.map((_, i) => d.clock + 2 * (specs[0].back + i + 1));
      break;
    case 'dupes': {
      const half = Math.ceil(n / 2);
      seconds = specs.map((_, i) => d.clock + 2 * ((i < half ? i : (i - half) % half) + 1));
      if (pick % 2 === 1) seconds.reverse();
      break;
    }
    default:
      // Fresh readings two seconds apart, so late ones can fall between them.
      seconds = specs.map((_, i) => d.clock + 2 * (i + 1));
  }
  if (shape === 'shuffled') {
    const k = pick % n;
    seconds =
      pick % 3 === 0 ? [...seconds].reverse() : [...seconds.slice(k), ...seconds.slice(0, k)];
  }
  if (shape !== 'late') d.clock = Math.max(d.clock, ...seconds);
  return { serial, events: seconds.map((s, i) => reading(s, specs[i].v, serial, i, specs[i].us)) };
}

// ---------------------------------------------------------------------------------------
// The system: the stack, the run's project, rules and webhooks; the commands.

export interface RunRule {
  id: string;
  spec: RuleSpec;
}

export interface RunHook {
  id: string;
  path: string;
  types: string[];
}

export interface Real {
  stack: FaultStack;
  tag: string;
  projectId: string;
  headers: Record<string, string>;
  rules: RunRule[];
  hooks: RunHook[];
}

async function post(real: Real, model: Model, device: DeviceModel, batch: Batch): Promise<boolean> {
  model.stats.posts++;
  const res = await request(real.stack.api.server)
    .post('/telemetry')
    .set(real.headers)
    .send({
      device_external_id: device.name,
      events: batch.events.map((e) => ({ ts: e.sent, data: e.data })),
    })
    .timeout(8000)
    .then(
      (r) => ({ status: r.status, body: r.body as unknown }),
      (err: { status?: number }) => ({ status: err.status ?? 0, body: undefined }),
    );
  if (res.status === 202) {
    model.stats.accepted++;
    return true;
  }
  // A refusal the docs allow during a fault; the device keeps the batch.
  if (![503, 429, 0].includes(res.status))
    throw new Error(`POST /telemetry answered ${res.status}: ${JSON.stringify(res.body)}`);
  model.stats.refused[res.status] = (model.stats.refused[res.status] ?? 0) + 1;
  return false;
}

/** Sends the device's buffer in order, stopping at the first refusal. */
export async function flush(real: Real, model: Model, device: DeviceModel): Promise<void> {
  while (device.outbox.length > 0) {
    if (!(await post(real, model, device, device.outbox[0]))) return;
    device.outbox.shift();
  }
}

/**
 * The background device: batches every few hundred ms for the whole run, so every fault
 * meets work in flight. Three in order (readings two seconds apart, alternating between
 * 30 low and 30 high values, so alerts open and resolve now and then), then one late:
 * high values in the odd seconds of the last 30, stored and evaluated only if the
 * evaluation of what came before had not run yet.
 */
export class Background {
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(real: Real, model: Model) {
    this.done = this.loop(real, model);
  }

  private async loop(real: Real, model: Model): Promise<void> {
    const d = model.devices[DEVICES.length];
    let k = 0;
    while (!this.stopped) {
      // A device buffers a little, then stops producing until the api answers again.
      if (d.outbox.length < 3) {
        const serial = model.serial++;
        const late = d.batches.length % 4 === 3;
        const events = late
          ? Array.from({ length: 8 }, (_, i) => reading(d.clock - 29 + 2 * i, 9, serial, i))
          : Array.from({ length: 10 }, (_, i) =>
              reading(d.clock + 2 * (i + 1), k++ % 60 < 30 ? 2 : 8, serial, i),
            );
        if (!late) d.clock += 20;
        d.batches.push({ serial, events });
        d.outbox.push({ serial, events });
      }
      await flush(real, model, d);
      await sleep(300);
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

class SendBatch implements Cmd {
  constructor(
    readonly device: number,
    readonly shape: Shape,
    readonly specs: EventSpec[],
    readonly pick: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const d = m.devices[this.device];
    const batch = buildBatch(d, m.serial++, this.shape, this.specs, this.pick);
    m.stats.shapes[this.shape] = (m.stats.shapes[this.shape] ?? 0) + 1;
    d.batches.push(batch);
    d.outbox.push(batch);
    await flush(r, m, d);
  }
  toString(): string {
    const values = this.specs.map(
      (e) => `${e.v}${this.shape === 'late' ? `@-${e.back}` : ''}${e.us ? `~${e.us}us` : ''}`,
    );
    return `Send(${DEVICES[this.device]}, ${this.shape}${this.shape === 'ahead' ? `+${this.specs[0].back}` : ''}, [${values.join(',')}], ${this.pick})`;
  }
}

class CutLink implements Cmd {
  constructor(
    readonly link: Link,
    readonly mode: 'reset' | 'blackhole',
    readonly ms: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.stats.faults.push(this.toString());
    await r.stack.cut(this.link, this.mode, this.ms);
  }
  toString(): string {
    return `Cut(${this.link}, ${this.mode}, ${this.ms}ms)`;
  }
}

class RestartPostgres implements Cmd {
  constructor(readonly downMs: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.stats.faults.push(this.toString());
    await r.stack.restartPostgres(this.downMs);
  }
  toString(): string {
    return `RestartPostgres(${this.downMs}ms)`;
  }
}

class KillWorker implements Cmd {
  constructor(
    readonly worker: number,
    readonly downMs: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.stats.faults.push(this.toString());
    await r.stack.killWorker(this.worker, 1500, this.downMs);
  }
  toString(): string {
    return `KillWorker(w${this.worker}, ${this.downMs}ms)`;
  }
}

class Pause implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(): Promise<void> {
    await sleep(this.ms);
  }
  toString(): string {
    return `Pause(${this.ms}ms)`;
  }
}

const valueArb: fc.Arbitrary<Value> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max: 10 }) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constant('text' as const) },
);
const specArb = fc.record({
  v: valueArb,
  back: fc.integer({ min: 0, max: 24 }),
  // Mostly whole milliseconds; sometimes a few hundred microseconds either side.
  us: fc.constantFrom(0, 0, 0, 0, 0, -400, -100, 100, 400),
});

/** The commands of a run, for a stack of `workers` worker processes. */
/** The commands of a run, for a stack of `workers` worker processes: half are batches. */
export const commandArbs = (workers: number): Array<fc.Arbitrary<Cmd>> => {
  const device = fc.nat({ max: DEVICES.length - 1 });
  const specs = fc.array(specArb, { minLength: 1, maxLength: 10 });
  const any = fc
    .tuple(
      device,
      fc.constantFrom<Shape>('fresh', 'shuffled', 'dupes', 'late', 'ahead', 'replay'),
      specs,
      fc.nat({ max: 99 }),
    )
    .map(([d, shape, e, pick]) => new SendBatch(d, shape, e, pick));
  const fresh = fc.tuple(device, specs).map(([d, e]) => new SendBatch(d, 'fresh', e, 0));
  // Out of order, late, repeated: what the evaluation schedule depends on.
  const disorder = fc
    .tuple(device, fc.constantFrom<Shape>('late', 'ahead', 'replay'), specs, fc.nat({ max: 99 }))
    .map(([d, shape, e, pick]) => new SendBatch(d, shape, e, pick));
  return [
    any,
    fresh,
    fresh,
    disorder,
    disorder,
    fc
      .tuple(
        fc.constantFrom<Link>('postgres', 'redis'),
        fc.constantFrom<'reset' | 'blackhole'>('reset', 'blackhole'),
        fc.integer({ min: 300, max: 4000 }),
      )
      .map(([link, mode, ms]) => new CutLink(link, mode, ms)),
    fc.integer({ min: 0, max: 2000 }).map((ms) => new RestartPostgres(ms)),
    fc
      .tuple(fc.nat({ max: workers - 1 }), fc.integer({ min: 0, max: 2000 }))
      .map(([w, ms]) => new KillWorker(w, ms)),
    fc.integer({ min: 50, max: 1500 }).map((ms) => new Pause(ms)),
  ];
};

const ruleArb: fc.Arbitrary<RuleSpec> = fc
  .record({
    operator: fc.constantFrom<Operator>('>', '>=', '<', '<=', '==', '!='),
    threshold: fc.integer({ min: 0, max: 10 }),
    windowN: fc.integer({ min: 1, max: 4 }),
    k: fc.integer({ min: 1, max: 4 }),
    cooldownSeconds: fc.constantFrom(0, 0, 3, 8),
  })
  .map(({ k, ...r }) => ({ ...r, metric: 't', requiredK: Math.min(k, r.windowN) }));

export const scenarioArb = fc.record({
  rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
  // The second webhook takes some types only; the first takes all.
  hookTypes: fc.subarray([...EVENT_TYPES], { minLength: 1 }),
});

export type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;
