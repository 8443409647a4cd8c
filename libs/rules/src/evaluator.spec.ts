import fc from 'fast-check';
import {
  EvaluationResult,
  EvaluationState,
  OPERATORS,
  Operator,
  Reading,
  RuleSpec,
  Transition,
  WindowEntry,
  WindowPoint,
  breaches,
  emptyState,
  evaluate,
} from './evaluator';

const T0 = Date.UTC(2025, 0, 1);
const METRIC = 'temperature';
/** Marks a reading whose data lacks the metric altogether. */
const MISSING = Symbol('missing');

const rule = (over: Partial<RuleSpec> = {}): RuleSpec => ({
  metric: METRIC,
  operator: '>',
  threshold: 50,
  windowN: 1,
  requiredK: 1,
  cooldownSeconds: 0,
  ...over,
});

const reading = (ts: number, value: unknown): Reading => ({
  ts,
  data: value === MISSING ? { humidity: 40 } : { [METRIC]: value, humidity: 40 },
});

/** Readings 1 s apart starting at `start`. */
const series = (values: unknown[], start = T0): Reading[] =>
  values.map((v, i) => reading(start + i * 1000, v));

const at = (i: number, start = T0): number => start + i * 1000;
const kinds = (ts: Transition[]) => ts.map((t) => `${t.kind}@${(t.at - T0) / 1000}`);
const points = (values: number[], start = T0): WindowPoint[] =>
  values.map((value, i) => ({ ts: start + i * 1000, value }));

/** Evaluates `readings` in consecutive batches cut at `cuts` (empty batches allowed). */
function evaluateSplit(
  r: RuleSpec,
  state: EvaluationState,
  readings: Reading[],
  cuts: number[],
): EvaluationResult {
  const bounds = [...cuts.map((c) => Math.min(c, readings.length)), readings.length].sort(
    (a, b) => a - b,
  );
  const transitions: Transition[] = [];
  let s = state;
  let from = 0;
  for (const to of bounds) {
    const res = evaluate(r, s, readings.slice(from, to));
    transitions.push(...res.transitions);
    // What the caller persists between calls: a detached copy.
    s = structuredClone(res.state);
    from = to;
  }
  return { state: s, transitions };
}

/** Cut points producing consecutive batches of the given sizes (cycled). */
function cutsFromSizes(length: number, sizes: number[]): number[] {
  const cuts: number[] = [];
  for (let i = 0, k = 0; i < length; k++) {
    i += sizes[k % sizes.length];
    cuts.push(Math.min(i, length));
  }
  return cuts;
}

const REF_OPS: Record<Operator, (v: number, t: number) => boolean> = {
  '>': (v, t) => v > t,
  '>=': (v, t) => v >= t,
  '<': (v, t) => v < t,
  '<=': (v, t) => v <= t,
  '==': (v, t) => v === t,
  '!=': (v, t) => v !== t,
};

/**
 * Reference semantics, written for clarity not speed: at every numeric reading the window is
 * rebuilt from scratch from all numeric points so far (initial window included) and counted.
 */
function naive(r: RuleSpec, state: EvaluationState, readings: Reading[]): EvaluationResult {
  const all: WindowPoint[] = state.window.map((p) => ({ ts: p.ts, value: p.value }));
  let open = state.open;
  let lastTriggeredAt = state.lastTriggeredAt;
  const transitions: Transition[] = [];
  for (const rd of readings) {
    const v = rd.data[r.metric];
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    all.push({ ts: rd.ts, value: v });
    const window: WindowEntry[] = all.slice(-r.windowN).map((p) => ({
      ts: p.ts,
      value: p.value,
      breached: REF_OPS[r.operator](p.value, r.threshold),
    }));
    const holds = window.filter((e) => e.breached).length >= r.requiredK;
    const clearAt = r.clearThreshold ?? r.threshold;
    const clearCount = window.filter((e) => !REF_OPS[r.operator](e.value, clearAt)).length;
    const clears =
      r.clearK == null ? window.length - clearCount < r.requiredK : clearCount >= r.clearK;
    const cooledDown =
      lastTriggeredAt === null || rd.ts - lastTriggeredAt >= r.cooldownSeconds * 1000;
    if (!open && holds && cooledDown) {
      transitions.push({ kind: 'open', at: rd.ts, window });
      open = true;
      lastTriggeredAt = rd.ts;
    } else if (open && !holds && clears) {
      transitions.push({ kind: 'resolve', at: rd.ts });
      open = false;
    }
  }
  return { state: { window: all.slice(-r.windowN), lastTriggeredAt, open }, transitions };
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

describe('breaches', () => {
  // [operator, below (9), at (10), above (11)] against threshold 10
  it.each<[Operator, boolean, boolean, boolean]>([
    ['>', false, false, true],
    ['>=', false, true, true],
    ['<', true, false, false],
    ['<=', true, true, false],
    ['==', false, true, false],
    ['!=', true, false, true],
  ])('%s: below %s, at %s, above %s', (op, below, atT, above) => {
    expect(breaches(op, 9, 10)).toBe(below);
    expect(breaches(op, 10, 10)).toBe(atT);
    expect(breaches(op, 11, 10)).toBe(above);
  });

  it('compares == and != exactly', () => {
    expect(breaches('==', 0.1 + 0.2, 0.3)).toBe(false);
    expect(breaches('!=', 0.1 + 0.2, 0.3)).toBe(true);
    expect(breaches('==', 10.000000000000002, 10)).toBe(false);
    expect(breaches('==', -0, 0)).toBe(true);
    expect(breaches('>=', 10 - Number.EPSILON * 8, 10)).toBe(false);
  });

  it('works on negative and fractional thresholds', () => {
    expect(breaches('<', -3.5, -3)).toBe(true);
    expect(breaches('>', -2.999, -3)).toBe(true);
    expect(breaches('<=', 0.25, 0.25)).toBe(true);
  });

  it('refuses an unknown operator', () => {
    expect(() => breaches('=<' as Operator, 1, 1)).toThrow(RangeError);
  });

  it('lists exactly the six operators', () => {
    expect([...OPERATORS]).toEqual(['>', '>=', '<', '<=', '==', '!=']);
  });
});

describe('emptyState', () => {
  it('is empty, closed, never triggered, and fresh on each call', () => {
    expect(emptyState()).toEqual({ window: [], lastTriggeredAt: null, open: false });
    expect(emptyState()).not.toBe(emptyState());
    expect(emptyState().window).not.toBe(emptyState().window);
  });
});

describe('evaluate', () => {
  describe('operators', () => {
    it.each<[Operator, number, boolean]>([
      ['>', 9, false],
      ['>', 10, false],
      ['>', 11, true],
      ['>=', 9, false],
      ['>=', 10, true],
      ['>=', 11, true],
      ['<', 9, true],
      ['<', 10, false],
      ['<', 11, false],
      ['<=', 9, true],
      ['<=', 10, true],
      ['<=', 11, false],
      ['==', 9, false],
      ['==', 10, true],
      ['==', 11, false],
      ['!=', 9, true],
      ['!=', 10, false],
      ['!=', 11, true],
    ])('value %s %s against 10 opens: %s', (operator, value, opens) => {
      const r = rule({ operator, threshold: 10 });
      const { state, transitions } = evaluate(r, emptyState(), [reading(T0, value)]);
      expect(transitions).toEqual(
        opens ? [{ kind: 'open', at: T0, window: [{ ts: T0, value, breached: true }] }] : [],
      );
      expect(state).toEqual({
        window: [{ ts: T0, value }],
        lastTriggeredAt: opens ? T0 : null,
        open: opens,
      });
    });
  });

  describe('the reference example: 5 of 5 > 80', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 5, requiredK: 5, cooldownSeconds: 0 });
    const readings = series([95, 96, 97, 98, 99]);

    it('opens exactly once, at the fifth reading, with the whole window', () => {
      const { state, transitions } = evaluate(r, emptyState(), readings);
      expect(transitions).toEqual([
        {
          kind: 'open',
          at: at(4),
          window: [95, 96, 97, 98, 99].map((value, i) => ({ ts: at(i), value, breached: true })),
        },
      ]);
      expect(state).toEqual({
        window: points([95, 96, 97, 98, 99]),
        lastTriggeredAt: at(4),
        open: true,
      });
    });

    it('does not open on four readings', () => {
      expect(evaluate(r, emptyState(), readings.slice(0, 4)).transitions).toEqual([]);
    });

    it('opens once whatever the batches', () => {
      for (let cut = 0; cut <= 5; cut++) {
        expect(evaluateSplit(r, emptyState(), readings, [cut])).toEqual(
          evaluate(r, emptyState(), readings),
        );
      }
      expect(evaluateSplit(r, emptyState(), readings, [1, 2, 3, 4])).toEqual(
        evaluate(r, emptyState(), readings),
      );
    });
  });

  describe('K and N', () => {
    it('K = N needs every point to breach and resolves at the first that does not', () => {
      const r = rule({ windowN: 3, requiredK: 3 });
      const { transitions } = evaluate(
        r,
        emptyState(),
        series([60, 60, 40, 60, 60, 60, 60, 40, 60]),
      );
      expect(kinds(transitions)).toEqual(['open@5', 'resolve@7']);
    });

    it('K = 1 opens on a single breach and resolves only when the window is clear', () => {
      const r = rule({ windowN: 4, requiredK: 1 });
      const { transitions } = evaluate(r, emptyState(), series([40, 60, 40, 40, 40, 40, 40]));
      // The breach at 1 stays in the window through reading 4; reading 5 pushes it out.
      expect(kinds(transitions)).toEqual(['open@1', 'resolve@5']);
    });

    it('N = 1 follows each reading', () => {
      const r = rule({ windowN: 1, requiredK: 1 });
      const { transitions } = evaluate(r, emptyState(), series([60, 61, 40, 60, 40, 40]));
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@2', 'open@3', 'resolve@4']);
    });

    it('K of N counts breaches anywhere in the window, not consecutive ones', () => {
      const r = rule({ windowN: 5, requiredK: 3 });
      const { transitions } = evaluate(r, emptyState(), series([60, 40, 60, 40, 60, 40, 40]));
      expect(kinds(transitions)).toEqual(['open@4', 'resolve@5']);
      expect((transitions[0] as { window: WindowEntry[] }).window.map((e) => e.breached)).toEqual([
        true,
        false,
        true,
        false,
        true,
      ]);
    });

    it('cannot hold while the window has fewer than K points', () => {
      const r = rule({ windowN: 10, requiredK: 3 });
      expect(evaluate(r, emptyState(), series([60, 60])).transitions).toEqual([]);
      expect(kinds(evaluate(r, emptyState(), series([60, 60, 60])).transitions)).toEqual([
        'open@2',
      ]);
    });

    it('never holds when K exceeds N', () => {
      const r = rule({ windowN: 2, requiredK: 3 });
      expect(evaluate(r, emptyState(), series([60, 60, 60, 60])).transitions).toEqual([]);
    });

    it('the open window holds at most windowN points, oldest first', () => {
      const r = rule({ windowN: 3, requiredK: 3 });
      const { transitions } = evaluate(r, emptyState(), series([1, 2, 60, 61, 62]));
      expect(transitions).toEqual([
        {
          kind: 'open',
          at: at(4),
          window: [
            { ts: at(2), value: 60, breached: true },
            { ts: at(3), value: 61, breached: true },
            { ts: at(4), value: 62, breached: true },
          ],
        },
      ]);
    });
  });

  describe('readings without a numeric value', () => {
    const skipped: Array<[string, unknown]> = [
      ['missing', MISSING],
      ['a string', 'hot'],
      ['a numeric string', '95'],
      ['true', true],
      ['false', false],
      ['null', null],
      ['undefined', undefined],
      ['an object', { value: 95 }],
      ['an array', [95]],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
    ];

    it.each(skipped)('%s is not counted in the window', (_name, v) => {
      const r = rule({ windowN: 2, requiredK: 2, threshold: 80 });
      const { state, transitions } = evaluate(r, emptyState(), [
        reading(at(0), 95),
        reading(at(1), v),
        reading(at(2), 96),
      ]);
      expect(transitions).toEqual([
        {
          kind: 'open',
          at: at(2),
          window: [
            { ts: at(0), value: 95, breached: true },
            { ts: at(2), value: 96, breached: true },
          ],
        },
      ]);
      expect(state.window).toEqual([
        { ts: at(0), value: 95 },
        { ts: at(2), value: 96 },
      ]);
    });

    it.each(skipped)('%s never opens an alert, even for a rule any number would trip', (_n, v) => {
      for (const operator of OPERATORS) {
        const r = rule({ operator, threshold: 0, windowN: 1, requiredK: 1 });
        const res = evaluate(r, emptyState(), [reading(at(0), v), reading(at(1), v)]);
        expect(res).toEqual({ state: emptyState(), transitions: [] });
      }
    });

    it.each(skipped)('%s never resolves an alert', (_name, v) => {
      const r = rule({ windowN: 1, requiredK: 1, threshold: 80 });
      const { transitions } = evaluate(r, emptyState(), [
        reading(at(0), 95),
        reading(at(1), v),
        reading(at(2), v),
        reading(at(3), 10),
      ]);
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@3']);
    });

    it('reads only the rule metric', () => {
      const r = rule({ metric: 'pressure', threshold: 80 });
      const res = evaluate(r, emptyState(), [
        { ts: at(0), data: { temperature: 99 } },
        { ts: at(1), data: { pressure: 99, temperature: 1 } },
      ]);
      expect(kinds(res.transitions)).toEqual(['open@1']);
    });

    it('does not find numbers on the prototype chain of data', () => {
      const r = rule({ metric: 'constructor', operator: '!=', threshold: 0 });
      expect(evaluate(r, emptyState(), [{ ts: at(0), data: {} }]).transitions).toEqual([]);
    });
  });

  describe('cooldown', () => {
    const r = rule({ windowN: 1, requiredK: 1, cooldownSeconds: 10 });

    it('re-opens a reading exactly the cooldown after the last trigger', () => {
      const { transitions } = evaluate(r, emptyState(), [
        reading(T0, 60),
        reading(T0 + 1000, 40),
        reading(T0 + 10_000, 60),
      ]);
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@1', 'open@10']);
    });

    it('does not re-open 1 ms earlier', () => {
      const { state, transitions } = evaluate(r, emptyState(), [
        reading(T0, 60),
        reading(T0 + 1000, 40),
        reading(T0 + 9_999, 60),
      ]);
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@1']);
      expect(state).toMatchObject({ lastTriggeredAt: T0, open: false });
    });

    it('opens at the first reading past the cooldown while the condition keeps holding', () => {
      const { transitions } = evaluate(r, emptyState(), [
        reading(T0, 60),
        reading(T0 + 1000, 40),
        reading(T0 + 2000, 60),
        reading(T0 + 9_999, 60),
        reading(T0 + 10_001, 60),
        reading(T0 + 10_002, 60),
      ]);
      expect(transitions).toEqual([
        { kind: 'open', at: T0, window: [{ ts: T0, value: 60, breached: true }] },
        { kind: 'resolve', at: T0 + 1000 },
        { kind: 'open', at: T0 + 10_001, window: [{ ts: T0 + 10_001, value: 60, breached: true }] },
      ]);
    });

    it('counts from the last trigger, not from the resolution', () => {
      const { transitions } = evaluate(r, emptyState(), [
        reading(T0, 60),
        reading(T0 + 9_000, 40),
        reading(T0 + 10_000, 60),
      ]);
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@9', 'open@10']);
    });

    it('a condition blocked by the cooldown that clears before it ends never opens', () => {
      const { transitions } = evaluate(r, emptyState(), [
        reading(T0, 60),
        reading(T0 + 1000, 40),
        reading(T0 + 5000, 60),
        reading(T0 + 10_000, 40),
        reading(T0 + 11_000, 40),
      ]);
      expect(kinds(transitions)).toEqual(['open@0', 'resolve@1']);
    });

    it('cooldown 0 re-opens on the very next breaching reading', () => {
      const r0 = rule({ windowN: 1, requiredK: 1, cooldownSeconds: 0 });
      const { transitions } = evaluate(r0, emptyState(), [
        reading(T0, 60),
        reading(T0 + 1, 40),
        reading(T0 + 2, 60),
        reading(T0 + 3, 40),
        reading(T0 + 4, 60),
      ]);
      expect(transitions.map((t) => `${t.kind}@${t.at - T0}`)).toEqual([
        'open@0',
        'resolve@1',
        'open@2',
        'resolve@3',
        'open@4',
      ]);
    });

    it('applies in reading time across calls, from the stored lastTriggeredAt', () => {
      const state: EvaluationState = { window: points([40]), lastTriggeredAt: T0, open: false };
      expect(evaluate(r, state, [reading(T0 + 9_999, 60)]).transitions).toEqual([]);
      expect(kinds(evaluate(r, state, [reading(T0 + 10_000, 60)]).transitions)).toEqual([
        'open@10',
      ]);
    });
  });

  describe('resolution', () => {
    const r = rule({ windowN: 5, requiredK: 3, cooldownSeconds: 60 });

    it('stays open while the condition holds and resolves when it clears', () => {
      const { state, transitions } = evaluate(
        r,
        emptyState(),
        series([60, 60, 60, 40, 60, 40, 40, 60, 40]),
      );
      // windows: [60,60,60] open @2; ...; @6 = [60,40,60,40,40] → 2 breaches → resolve.
      expect(kinds(transitions)).toEqual(['open@2', 'resolve@6']);
      expect(state.lastTriggeredAt).toBe(at(2));
      expect(state.open).toBe(false);
    });

    it('leaves lastTriggeredAt as it was', () => {
      const state: EvaluationState = { window: points([60]), lastTriggeredAt: T0 - 5, open: true };
      const res = evaluate(rule(), state, [reading(at(1), 40)]);
      expect(res.transitions).toEqual([{ kind: 'resolve', at: at(1) }]);
      expect(res.state.lastTriggeredAt).toBe(T0 - 5);
    });

    it('resolves an alert open on input even if it never triggered here', () => {
      const state: EvaluationState = { window: [], lastTriggeredAt: null, open: true };
      const res = evaluate(rule(), state, series([60, 40, 60]));
      expect(kinds(res.transitions)).toEqual(['resolve@1', 'open@2']);
      expect(res.state.lastTriggeredAt).toBe(at(2));
    });

    it('re-opens after resolution only once the cooldown allows', () => {
      const r1 = rule({ windowN: 2, requiredK: 2, cooldownSeconds: 10 });
      // 1 s spacing: open @1, resolve @2, condition back @4 but cooldown until 11.
      const values = [60, 60, 40, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 40];
      const { transitions } = evaluate(r1, emptyState(), series(values));
      expect(kinds(transitions)).toEqual(['open@1', 'resolve@2', 'open@11', 'resolve@13']);
    });
  });

  describe('manual resolution (open: false on input)', () => {
    const r = rule({ windowN: 3, requiredK: 2, cooldownSeconds: 30 });
    const triggered = at(2);
    const handResolved: EvaluationState = {
      window: points([60, 60, 60]),
      lastTriggeredAt: triggered,
      open: false,
    };

    it('re-opens while the condition still holds only when the cooldown allows', () => {
      const offsets = [5_000, 10_000, 20_000, 29_999, 30_000, 31_000, 32_000];
      const readings = offsets.map((ms) => reading(triggered + ms, 60));
      const { state, transitions } = evaluate(r, handResolved, readings);
      expect(transitions.map((t) => [t.kind, t.at - triggered])).toEqual([['open', 30_000]]);
      expect(state).toMatchObject({ open: true, lastTriggeredAt: triggered + 30_000 });
    });

    it('opens at once when it never triggered', () => {
      const state = { ...handResolved, lastTriggeredAt: null };
      expect(evaluate(r, state, [reading(at(3), 60)]).transitions).toEqual([
        {
          kind: 'open',
          at: at(3),
          window: [
            { ts: at(1), value: 60, breached: true },
            { ts: at(2), value: 60, breached: true },
            { ts: at(3), value: 60, breached: true },
          ],
        },
      ]);
    });

    it('honours open: true on input: no second open while the condition holds', () => {
      const state = { ...handResolved, open: true, lastTriggeredAt: null };
      const res = evaluate(r, state, series([60, 60, 40, 40], at(3)));
      expect(kinds(res.transitions)).toEqual(['resolve@6']);
    });
  });

  describe('rule changes', () => {
    it('truncates a longer stored window to the last windowN points', () => {
      const state: EvaluationState = {
        window: points([100, 100, 100, 0, 0]),
        lastTriggeredAt: null,
        open: false,
      };
      const shrunk = rule({ windowN: 3, requiredK: 2 });
      expect(evaluate(shrunk, state, [])).toEqual({
        state: {
          window: points([100, 100, 100, 0, 0]).slice(-3),
          lastTriggeredAt: null,
          open: false,
        },
        transitions: [],
      });
      // Window [0, 0, 100]: the 100s pushed out by the shrink do not count.
      const res = evaluate(shrunk, state, [reading(at(5), 100)]);
      expect(res.transitions).toEqual([]);
      expect(res.state.window).toEqual([
        { ts: at(3), value: 0 },
        { ts: at(4), value: 0 },
        { ts: at(5), value: 100 },
      ]);
      // Under the old windowN they would have.
      const old = rule({ windowN: 5, requiredK: 2 });
      expect(kinds(evaluate(old, state, [reading(at(5), 100)]).transitions)).toEqual(['open@5']);
    });

    it('grows the window when windowN grows', () => {
      const state: EvaluationState = {
        window: points([60, 60]),
        lastTriggeredAt: null,
        open: false,
      };
      const grown = rule({ windowN: 4, requiredK: 4 });
      const res = evaluate(grown, state, series([60, 60, 60], at(2)));
      expect(res.transitions).toEqual([
        {
          kind: 'open',
          at: at(3),
          window: [0, 1, 2, 3].map((i) => ({ ts: at(i), value: 60, breached: true })),
        },
      ]);
      expect(res.state.window).toEqual(points([60, 60, 60, 60], at(1)));
    });

    it('applies a new threshold from the next reading, not to the stored state', () => {
      const before = rule({ windowN: 3, requiredK: 2, threshold: 50 });
      const first = evaluate(before, emptyState(), series([60, 60, 60]));
      expect(kinds(first.transitions)).toEqual(['open@1']);

      const after = { ...before, threshold: 70 };
      // Nothing happens without a reading, even though the condition no longer holds.
      expect(evaluate(after, first.state, [])).toEqual({ state: first.state, transitions: [] });
      // The stored 60s no longer breach: the next reading resolves.
      expect(evaluate(after, first.state, [reading(at(3), 60)]).transitions).toEqual([
        { kind: 'resolve', at: at(3) },
      ]);
    });

    it('recomputes breached flags of stored points from the current operator', () => {
      const state: EvaluationState = {
        window: points([60, 40, 60]),
        lastTriggeredAt: null,
        open: false,
      };
      const r = rule({ operator: '<', threshold: 50, windowN: 4, requiredK: 2 });
      const res = evaluate(r, state, [reading(at(3), 45)]);
      expect(res.transitions).toEqual([
        {
          kind: 'open',
          at: at(3),
          window: [
            { ts: at(0), value: 60, breached: false },
            { ts: at(1), value: 40, breached: true },
            { ts: at(2), value: 60, breached: false },
            { ts: at(3), value: 45, breached: true },
          ],
        },
      ]);
    });

    it('follows a new metric from the next reading, with the stored points', () => {
      const state: EvaluationState = { window: points([60]), lastTriggeredAt: null, open: false };
      const r = rule({ metric: 'pressure', windowN: 2, requiredK: 2 });
      const res = evaluate(r, state, [{ ts: at(1), data: { pressure: 70, temperature: 0 } }]);
      expect(kinds(res.transitions)).toEqual(['open@1']);
    });
  });

  describe('purity', () => {
    it('does not mutate the input state, its window or the readings', () => {
      const state: EvaluationState = deepFreeze({
        window: points([60, 40, 60, 60]),
        lastTriggeredAt: T0 - 100_000,
        open: false,
      });
      const readings = deepFreeze(series([60, 40, 'x', 60, 40, 40, 40], at(4)));
      const copy = structuredClone({ state, readings });
      const r = rule({ windowN: 3, requiredK: 2 });
      const res = evaluate(r, state, readings);
      expect({ state, readings }).toEqual(copy);
      expect(res.state).not.toBe(state);
      expect(res.state.window).not.toBe(state.window);
      expect(kinds(res.transitions)).toEqual(['open@4', 'resolve@8']);
    });

    it('shares no objects between the result and the input', () => {
      const state: EvaluationState = { window: points([60]), lastTriggeredAt: null, open: false };
      const res = evaluate(rule({ windowN: 2 }), state, []);
      res.state.window[0].value = 0;
      res.state.window.push({ ts: at(9), value: 9 });
      expect(state.window).toEqual(points([60]));
    });

    it('returns the same result on repeated calls', () => {
      const r = rule({ windowN: 4, requiredK: 2 });
      const readings = series([60, 40, 60, 40, 40, 40, 60, 60]);
      expect(evaluate(r, emptyState(), readings)).toEqual(evaluate(r, emptyState(), readings));
    });
  });

  describe('invalid rules', () => {
    it.each<[string, Partial<RuleSpec>]>([
      ['windowN 0', { windowN: 0 }],
      ['fractional windowN', { windowN: 1.5 }],
      ['requiredK 0', { requiredK: 0 }],
      ['fractional requiredK', { requiredK: 0.5 }],
      ['negative cooldown', { cooldownSeconds: -1 }],
      ['NaN cooldown', { cooldownSeconds: NaN }],
      ['NaN threshold', { threshold: NaN }],
      ['infinite threshold', { threshold: Infinity }],
      ['unknown operator', { operator: '=' as Operator }],
    ])('refuses %s', (_name, over) => {
      expect(() => evaluate(rule(over), emptyState(), [])).toThrow(RangeError);
    });
  });

  describe('eight bursts in one 128-reading stream open eight alerts', () => {
    const r = rule({ operator: '>', threshold: 50, windowN: 5, requiredK: 3, cooldownSeconds: 0 });
    const values = Array.from({ length: 128 }, (_, i) => (i % 16 < 5 ? 100 : 0));
    const readings = series(values);
    const expected = Array.from({ length: 8 }, (_, b) => [
      `open@${b * 16 + 2}`,
      `resolve@${b * 16 + 7}`,
    ]).flat();

    it('in one call', () => {
      const { state, transitions } = evaluate(r, emptyState(), readings);
      expect(kinds(transitions)).toEqual(expected);
      expect(transitions.filter((t) => t.kind === 'open')).toHaveLength(8);
      expect(transitions.filter((t) => t.kind === 'resolve')).toHaveLength(8);
      expect(state).toEqual({
        window: points([0, 0, 0, 0, 0], at(123)),
        lastTriggeredAt: at(114),
        open: false,
      });
    });

    it('one reading at a time', () => {
      const res = evaluateSplit(r, emptyState(), readings, cutsFromSizes(128, [1]));
      expect(res).toEqual(evaluate(r, emptyState(), readings));
    });

    it('in random batches of 1-7 readings', () => {
      const single = evaluate(r, emptyState(), readings);
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 128 }),
          (sizes) => {
            const res = evaluateSplit(r, emptyState(), readings, cutsFromSizes(128, sizes));
            expect(kinds(res.transitions)).toEqual(expected);
            expect(res).toEqual(single);
          },
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('large windows', () => {
    it('windowN 1000 over 5,000 readings agrees with the reference, in one call or many', () => {
      const r = rule({
        operator: '>=',
        threshold: 0,
        windowN: 1000,
        requiredK: 500,
        cooldownSeconds: 60,
      });
      let seed = 42;
      const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      // A slowly drifting breach rate so the condition crosses K back and forth.
      const values = Array.from({ length: 5000 }, (_, i) =>
        rand() < 0.5 + 0.2 * Math.sin(i / 300) ? 1 : rand() < 0.05 ? 'n/a' : -1,
      );
      const readings = series(values);
      const single = evaluate(r, emptyState(), readings);
      expect(single).toEqual(naive(r, emptyState(), readings));
      expect(single.transitions.length).toBeGreaterThan(2);
      expect(evaluateSplit(r, emptyState(), readings, [1, 999, 1000, 1001, 2500, 4999])).toEqual(
        single,
      );
    });
  });
});

describe('evaluate properties', () => {
  const ruleArb: fc.Arbitrary<RuleSpec> = fc.integer({ min: 1, max: 20 }).chain((windowN) =>
    fc.record({
      metric: fc.constant(METRIC),
      operator: fc.constantFrom(...OPERATORS),
      threshold: fc.integer({ min: -3, max: 3 }),
      windowN: fc.constant(windowN),
      requiredK: fc.integer({ min: 1, max: windowN }),
      cooldownSeconds: fc.integer({ min: 0, max: 30 }),
      // Hysteresis in any direction, also the nonsensical ones the API refuses: the
      // evaluator's semantics hold for every value.
      clearThreshold: fc.option(fc.integer({ min: -4, max: 4 }), { nil: undefined }),
      clearK: fc.option(fc.integer({ min: 1, max: windowN + 1 }), { nil: undefined }),
    }),
  );

  const valueArb: fc.Arbitrary<unknown> = fc.oneof(
    { arbitrary: fc.integer({ min: -5, max: 5 }), weight: 12 },
    {
      arbitrary: fc.constantFrom<unknown>(
        MISSING,
        'x',
        '3',
        true,
        false,
        null,
        NaN,
        Infinity,
        -Infinity,
        -0,
        0.5,
      ),
      weight: 3,
    },
  );

  // Whole seconds make cooldown boundaries hit exactly; odd milliseconds miss them by a little.
  const gapArb = fc.oneof(
    fc.integer({ min: 1, max: 10 }).map((s) => s * 1000),
    fc.integer({ min: 1, max: 10_000 }),
  );

  const pointValueArb = fc.integer({ min: -5, max: 5 });

  interface Scenario {
    rule: RuleSpec;
    state: EvaluationState;
    readings: Reading[];
  }

  const stateArb = fc.record({
    window: fc.array(pointValueArb, { maxLength: 25 }),
    open: fc.boolean(),
    triggeredAgo: fc.option(fc.integer({ min: 0, max: 40_000 }), { nil: null }),
  });

  const streamArb = fc.array(fc.record({ gap: gapArb, value: valueArb }), { maxLength: 200 });

  const build = (
    s: { window: number[]; open: boolean; triggeredAgo: number | null },
    stream: Array<{ gap: number; value: unknown }>,
  ): { state: EvaluationState; readings: Reading[] } => {
    const window = points(s.window);
    let ts = at(s.window.length);
    const readings = stream.map(({ gap, value }) => reading((ts += gap), value));
    return {
      state: {
        window,
        open: s.open,
        lastTriggeredAt: s.triggeredAgo === null ? null : at(s.window.length) - s.triggeredAgo,
      },
      readings,
    };
  };

  const scenarioArb: fc.Arbitrary<Scenario> = fc
    .tuple(ruleArb, fc.oneof(fc.constant(null), stateArb), streamArb)
    .map(([rule, s, stream]) => ({
      rule,
      ...build(s ?? { window: [], open: false, triggeredAgo: null }, stream),
    }));

  const cutsArb = fc.array(fc.nat({ max: 220 }), { maxLength: 12 });

  it('(1) any split of a stream into batches gives the same transitions and final state', () => {
    fc.assert(
      fc.property(scenarioArb, cutsArb, ({ rule: r, state, readings }, cuts) => {
        expect(evaluateSplit(r, state, readings, cuts)).toEqual(evaluate(r, state, readings));
      }),
      { numRuns: 500 },
    );
  });

  it('(2) agrees with the naive reference, without mutating its input', () => {
    fc.assert(
      fc.property(scenarioArb, ({ rule: r, state, readings }) => {
        const before = structuredClone({ state, readings });
        const res = evaluate(r, deepFreeze(state), deepFreeze(readings));
        expect({ state, readings }).toEqual(before);
        expect(res).toEqual(naive(r, before.state, before.readings));
      }),
      { numRuns: 500 },
    );
  });

  it('(3) a rule change mid-stream applies from the next reading, as in the reference', () => {
    fc.assert(
      fc.property(scenarioArb, ruleArb, fc.nat({ max: 200 }), (s, changed, cut) => {
        const first = s.readings.slice(0, cut);
        const rest = s.readings.slice(cut);
        const mid = evaluate(s.rule, s.state, first);
        const end = evaluate(changed, mid.state, rest);
        const refMid = naive(s.rule, s.state, first);
        expect(mid).toEqual(refMid);
        expect(end).toEqual(naive(changed, refMid.state, rest));
      }),
      { numRuns: 300 },
    );
  });

  it('(4) transitions alternate, respect the cooldown and carry windows of at most windowN', () => {
    fc.assert(
      fc.property(scenarioArb, ({ rule: r, state, readings }) => {
        const { state: out, transitions } = evaluate(r, state, readings);
        let open = state.open;
        let last = state.lastTriggeredAt;
        for (const t of transitions) {
          expect(t.kind).toBe(open ? 'resolve' : 'open');
          if (t.kind === 'open') {
            if (last !== null) expect(t.at - last).toBeGreaterThanOrEqual(r.cooldownSeconds * 1000);
            expect(t.window.length).toBeLessThanOrEqual(r.windowN);
            expect(t.window.filter((e) => e.breached).length).toBeGreaterThanOrEqual(r.requiredK);
            expect(t.window[t.window.length - 1].ts).toBe(t.at);
            last = t.at;
          }
          open = !open;
        }
        expect(out.open).toBe(open);
        expect(out.lastTriggeredAt).toBe(last);
        expect(out.window.length).toBeLessThanOrEqual(r.windowN);
      }),
      { numRuns: 300 },
    );
  });
  it('(5) hysteresis never brings a resolve forward: each one also resolves the plain rule', () => {
    fc.assert(
      fc.property(scenarioArb, ({ rule: r, state, readings }) => {
        const plain = { ...r, clearThreshold: undefined, clearK: undefined };
        // The same stream cut at each resolve: the plain rule, in the state hysteresis had
        // reached just before, resolves at that reading too.
        let st = state;
        let from = 0;
        for (const t of evaluate(r, state, readings).transitions) {
          const upTo = readings.findIndex((rd) => rd.ts === t.at);
          const before = evaluate(r, st, readings.slice(from, upTo));
          if (t.kind === 'resolve') {
            const step = evaluate(plain, before.state, [readings[upTo]]);
            expect(step.transitions).toEqual([{ kind: 'resolve', at: t.at }]);
          }
          st = evaluate(r, before.state, [readings[upTo]]).state;
          from = upTo + 1;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('(6) without clear fields, or with the threshold as clear threshold, it is the plain rule', () => {
    fc.assert(
      fc.property(scenarioArb, ({ rule: r, state, readings }) => {
        const plain = { ...r, clearThreshold: undefined, clearK: undefined };
        expect(
          evaluate({ ...plain, clearThreshold: r.threshold, clearK: null }, state, readings),
        ).toEqual(evaluate(plain, state, readings));
      }),
      { numRuns: 200 },
    );
  });
});

describe('hysteresis', () => {
  it('a clear threshold keeps the alert open until the value is back across it', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 1, requiredK: 1, clearThreshold: 75 });
    const res = evaluate(r, emptyState(), series([85, 78, 79, 74, 78, 81]));
    expect(kinds(res.transitions)).toEqual(['open@0', 'resolve@3', 'open@5']);
  });

  it('without it the same stream flaps at every crossing', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 1, requiredK: 1 });
    const res = evaluate(r, emptyState(), series([85, 78, 81, 79, 82]));
    expect(kinds(res.transitions)).toEqual([
      'open@0',
      'resolve@1',
      'open@2',
      'resolve@3',
      'open@4',
    ]);
  });

  it('works downwards: a < rule clears once a value is no longer below its clear threshold', () => {
    const r = rule({ operator: '<', threshold: 10, windowN: 1, requiredK: 1, clearThreshold: 15 });
    const res = evaluate(r, emptyState(), series([5, 12, 14, 15, 16]));
    expect(kinds(res.transitions)).toEqual(['open@0', 'resolve@3']);
  });

  it('clearK needs that many clear points in the window', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 5, requiredK: 3, clearK: 5 });
    // Opens at the third breach; the condition stops holding at 70 #2 (2 of 5 breach), but
    // only the fifth clear point in a row resolves it.
    const res = evaluate(r, emptyState(), series([90, 90, 90, 70, 70, 70, 70, 70]));
    expect(kinds(res.transitions)).toEqual(['open@2', 'resolve@7']);
  });

  it('a small clearK does not resolve while the open condition still holds', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 5, requiredK: 2, clearK: 3 });
    // At the fifth reading 3 points are clear but 2 still breach: the alert stays open.
    const res = evaluate(r, emptyState(), series([90, 90, 70, 70, 70, 70]));
    expect(kinds(res.transitions)).toEqual(['open@1', 'resolve@5']);
  });

  it('both: clearK points back across the clear threshold', () => {
    const r = rule({
      operator: '>=',
      threshold: 80,
      windowN: 3,
      requiredK: 3,
      clearThreshold: 70,
      clearK: 2,
    });
    const res = evaluate(r, emptyState(), series([80, 80, 80, 75, 69, 75, 69]));
    // 69 is clear (not >= 70), 75 is not: two 69s in the window of 3 resolve.
    expect(kinds(res.transitions)).toEqual(['open@2', 'resolve@6']);
  });

  it('is kept across calls: the window carries what the clear count needs', () => {
    const r = rule({ operator: '>', threshold: 80, windowN: 5, requiredK: 3, clearK: 5 });
    const readings = series([90, 90, 90, 70, 70, 70, 70, 70]);
    for (let cut = 0; cut <= readings.length; cut++)
      expect(evaluateSplit(r, emptyState(), readings, [cut])).toEqual(
        evaluate(r, emptyState(), readings),
      );
  });

  it('refuses a clear threshold that is not finite and a clearK below 1', () => {
    expect(() => evaluate(rule({ clearThreshold: NaN }), emptyState(), [])).toThrow(RangeError);
    expect(() => evaluate(rule({ clearK: 0 }), emptyState(), [])).toThrow(RangeError);
    expect(() => evaluate(rule({ clearK: 1.5 }), emptyState(), [])).toThrow(RangeError);
  });
});
