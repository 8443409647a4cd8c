/**
 * k-of-n threshold rule evaluation: pure, synchronous, no I/O.
 *
 * For one rule and one device, the window at a reading is the last `windowN` readings whose
 * `data[metric]` is a finite number (other readings are skipped entirely). The condition holds
 * when at least `requiredK` points of the window breach `value <operator> threshold`. An alert
 * opens where the condition holds, none is open and the cooldown (in reading time) has passed
 * since the last trigger; an open alert resolves at the first later numeric reading where the
 * condition no longer holds and the clear condition does.
 *
 * The clear condition is hysteresis, optional. A point is clear when it does not breach
 * `value <operator> clearThreshold` (`clearThreshold` defaults to `threshold`). With
 * `clearK`, the clear condition holds when at least `clearK` points of the window are clear;
 * without it, when fewer than `requiredK` points are not clear (the open condition, at the
 * clear threshold). Without either field it is exactly "the condition no longer holds".
 * Hysteresis can only delay a resolve, never bring one forward.
 *
 * Cost: O(windowN) per call to load the stored window (breaches are recomputed from the current
 * rule), O(1) per reading (ring buffer + running breach count), plus O(windowN) per `open`
 * transition to copy out the window it carries. The result never depends on how a stream is
 * split into calls.
 */

export const OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type Operator = (typeof OPERATORS)[number];

export interface RuleSpec {
  metric: string;
  operator: Operator;
  threshold: number;
  windowN: number;
  requiredK: number;
  cooldownSeconds: number;
  /** Hysteresis: the threshold a point must be back across to count as clear. */
  clearThreshold?: number | null;
  /** Hysteresis: how many clear points of the window resolve an open alert. */
  clearK?: number | null;
}

/** ts = epoch ms */
export interface WindowPoint {
  ts: number;
  value: number;
}

export interface EvaluationState {
  window: WindowPoint[];
  lastTriggeredAt: number | null;
  open: boolean;
}

/** ts = epoch ms */
export interface Reading {
  ts: number;
  data: Record<string, unknown>;
}

export interface WindowEntry {
  ts: number;
  value: number;
  breached: boolean;
}

export type Transition =
  { kind: 'open'; at: number; window: WindowEntry[] } | { kind: 'resolve'; at: number };

export interface EvaluationResult {
  state: EvaluationState;
  transitions: Transition[];
}

type Comparator = (value: number, threshold: number) => boolean;

const gt: Comparator = (v, t) => v > t;
const gte: Comparator = (v, t) => v >= t;
const lt: Comparator = (v, t) => v < t;
const lte: Comparator = (v, t) => v <= t;
const eq: Comparator = (v, t) => v === t;
const ne: Comparator = (v, t) => v !== t;

function comparator(operator: Operator): Comparator {
  switch (operator) {
    case '>':
      return gt;
    case '>=':
      return gte;
    case '<':
      return lt;
    case '<=':
      return lte;
    case '==':
      return eq;
    case '!=':
      return ne;
    default: {
      const unknown: never = operator;
      throw new RangeError(`unknown operator ${JSON.stringify(unknown)}`);
    }
  }
}

/** Whether `value operator threshold` (exact numeric comparison for == and !=). */
export function breaches(operator: Operator, value: number, threshold: number): boolean {
  return comparator(operator)(value, threshold);
}

export function emptyState(): EvaluationState {
  return { window: [], lastTriggeredAt: null, open: false };
}

function assertRule(rule: RuleSpec): void {
  if (!Number.isSafeInteger(rule.windowN) || rule.windowN < 1) {
    throw new RangeError(`windowN must be a positive integer, got ${rule.windowN}`);
  }
  if (!Number.isSafeInteger(rule.requiredK) || rule.requiredK < 1) {
    throw new RangeError(`requiredK must be a positive integer, got ${rule.requiredK}`);
  }
  if (!Number.isFinite(rule.cooldownSeconds) || rule.cooldownSeconds < 0) {
    throw new RangeError(`cooldownSeconds must be >= 0, got ${rule.cooldownSeconds}`);
  }
  if (!Number.isFinite(rule.threshold)) {
    throw new RangeError(`threshold must be a finite number, got ${rule.threshold}`);
  }
  if (rule.clearThreshold != null && !Number.isFinite(rule.clearThreshold)) {
    throw new RangeError(`clearThreshold must be a finite number, got ${rule.clearThreshold}`);
  }
  if (rule.clearK != null && (!Number.isSafeInteger(rule.clearK) || rule.clearK < 1)) {
    throw new RangeError(`clearK must be a positive integer, got ${rule.clearK}`);
  }
}

/**
 * Evaluates `readings` (strictly increasing ts, all newer than `state.window`) in order.
 * Neither `state` nor `readings` is mutated; the returned state shares nothing with the input.
 */
export function evaluate(
  rule: RuleSpec,
  state: EvaluationState,
  readings: Reading[],
): EvaluationResult {
  assertRule(rule);
  const { metric, threshold, windowN, requiredK } = rule;
  const cmp = comparator(rule.operator);
  const clearThreshold = rule.clearThreshold ?? threshold;
  const clearK = rule.clearK ?? null;
  const cooldownMs = rule.cooldownSeconds * 1000;
  const stored = state.window;
  const kept = Math.min(stored.length, windowN);

  // Ring buffer of the window: oldest point at `head`, `size` points, `count` of them breach,
  // `clear` of them are clear (do not breach the clear threshold).
  // Its capacity never needs to exceed the points this call can see; when it is smaller than
  // windowN the buffer never fills, so it evicts exactly when the window is windowN long.
  const cap = Math.min(windowN, kept + readings.length);
  const tsBuf = new Float64Array(cap);
  const valueBuf = new Float64Array(cap);
  const breachBuf = new Uint8Array(cap);
  const clearBuf = new Uint8Array(cap);
  let head = 0;
  let size = 0;
  let count = 0;
  let clear = 0;

  // A window longer than the (possibly shrunk) windowN keeps only its newest points.
  for (let i = stored.length - kept; i < stored.length; i++) {
    const p = stored[i];
    const b = cmp(p.value, threshold) ? 1 : 0;
    const c = cmp(p.value, clearThreshold) ? 0 : 1;
    tsBuf[size] = p.ts;
    valueBuf[size] = p.value;
    breachBuf[size] = b;
    clearBuf[size] = c;
    count += b;
    clear += c;
    size++;
  }

  let open = state.open;
  let lastTriggeredAt = state.lastTriggeredAt;
  const transitions: Transition[] = [];

  for (let r = 0; r < readings.length; r++) {
    const reading = readings[r];
    const data = reading.data;
    const value = data == null ? undefined : data[metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;

    const ts = reading.ts;
    const b = cmp(value, threshold) ? 1 : 0;
    const c = cmp(value, clearThreshold) ? 0 : 1;
    let slot: number;
    if (size === cap) {
      slot = head;
      count -= breachBuf[slot];
      clear -= clearBuf[slot];
      head = head + 1 === cap ? 0 : head + 1;
    } else {
      slot = head + size;
      if (slot >= cap) slot -= cap;
      size++;
    }
    tsBuf[slot] = ts;
    valueBuf[slot] = value;
    breachBuf[slot] = b;
    clearBuf[slot] = c;
    count += b;
    clear += c;

    const holds = count >= requiredK;
    if (open) {
      if (!holds && (clearK === null ? size - clear < requiredK : clear >= clearK)) {
        open = false;
        transitions.push({ kind: 'resolve', at: ts });
      }
    } else if (holds && (lastTriggeredAt === null || ts - lastTriggeredAt >= cooldownMs)) {
      const window: WindowEntry[] = new Array<WindowEntry>(size);
      for (let i = 0, j = head; i < size; i++, j = j + 1 === cap ? 0 : j + 1) {
        window[i] = { ts: tsBuf[j], value: valueBuf[j], breached: breachBuf[j] === 1 };
      }
      transitions.push({ kind: 'open', at: ts, window });
      open = true;
      lastTriggeredAt = ts;
    }
  }

  const window: WindowPoint[] = new Array<WindowPoint>(size);
  for (let i = 0, j = head; i < size; i++, j = j + 1 === cap ? 0 : j + 1) {
    window[i] = { ts: tsBuf[j], value: valueBuf[j] };
  }
  return { state: { window, lastTriggeredAt, open }, transitions };
}
