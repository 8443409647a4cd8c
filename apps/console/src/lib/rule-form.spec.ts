import { savedRule } from '../testing/fixtures';
import {
  backtestRule,
  backtestTarget,
  createBody,
  describeRule,
  EMPTY_RULE_FORM,
  formOf,
  patchBody,
} from './rule-form';

const saved = savedRule({ clear_threshold: 45, scope: 'TAG', tag: 'greenhouse' });

describe('createBody', () => {
  it('sends the fields of a threshold rule as numbers, and leaves out what is unset', () => {
    expect(createBody(formOf(saved))).toEqual({
      name: 'Too hot',
      kind: 'threshold',
      scope: 'TAG',
      tag: 'greenhouse',
      enabled: true,
      metric: 'temperature',
      operator: '>',
      threshold: 50,
      window_n: 3,
      required_k: 2,
      clear_threshold: 45,
      cooldown_seconds: 0,
    });
  });

  it('sends an offline rule without the threshold fields', () => {
    const body = createBody({
      ...EMPTY_RULE_FORM,
      name: 'Quiet',
      kind: 'offline',
      metric: 'x',
      threshold: '3',
    });
    expect(body).toEqual({
      name: 'Quiet',
      kind: 'offline',
      scope: 'ALL',
      enabled: true,
      offline_after_seconds: 900,
      cooldown_seconds: 0,
    });
  });

  it('passes what is not a number as typed, so the API names the field', () => {
    expect(createBody({ ...EMPTY_RULE_FORM, threshold: '12abc' }).threshold).toBe('12abc');
  });
});

describe('patchBody', () => {
  it('sends only what changed', () => {
    const before = formOf(saved);
    expect(patchBody(before, before)).toEqual({});
    expect(patchBody(before, { ...before, required_k: '3', name: ' Hotter ' })).toEqual({
      required_k: 3,
      name: 'Hotter',
    });
  });

  it('sends null for a cleared optional number', () => {
    const before = formOf(saved);
    expect(patchBody(before, { ...before, clear_threshold: '' })).toEqual({
      clear_threshold: null,
    });
  });

  it('moves a rule off a tag without sending the tag', () => {
    const before = formOf(saved);
    expect(patchBody(before, { ...before, scope: 'ALL', tag: '' })).toEqual({ scope: 'ALL' });
  });
});

it('backtestRule keeps only what the backtest evaluates', () => {
  expect(backtestRule(formOf(saved))).toEqual({
    metric: 'temperature',
    operator: '>',
    threshold: 50,
    window_n: 3,
    required_k: 2,
    clear_threshold: 45,
    cooldown_seconds: 0,
  });
});

it('describeRule reads like the condition', () => {
  expect(describeRule(saved)).toBe('temperature > 50, 2 of 3');
  expect(describeRule({ ...saved, kind: 'offline', offline_after_seconds: 900 })).toBe(
    'nothing heard for 900 s',
  );
});

describe('backtestTarget', () => {
  const form = (over: Partial<ReturnType<typeof formOf>>) => ({ ...formOf(savedRule()), ...over });
  it("runs a tag rule over the form's tag, saved or not", () => {
    expect(backtestTarget(form({ scope: 'TAG', tag: ' greenhouse ' }), 'r')).toEqual({
      tag: 'greenhouse',
      everyDevice: false,
    });
  });
  it('runs a saved rule for assigned devices over its assignments, a new one over every device', () => {
    expect(backtestTarget(form({ scope: 'EXPLICIT' }), 'r')).toEqual({
      rule_id: 'r',
      everyDevice: false,
    });
    expect(backtestTarget(form({ scope: 'EXPLICIT' }), null)).toEqual({ everyDevice: true });
  });
  it('runs an ALL rule over every device, without the saved scope', () => {
    expect(backtestTarget(form({ scope: 'ALL' }), 'r')).toEqual({ everyDevice: true });
  });
});
