import type { Schemas } from '../api/client';

type Rule = Schemas['RuleResponse'];
type CreateRule = Schemas['CreateRuleDto'];
type UpdateRule = Schemas['UpdateRuleDto'];

/** The rule form as typed: every input a string (or a boolean), empty meaning unset. */
export interface RuleForm {
  name: string;
  kind: 'threshold' | 'offline';
  metric: string;
  operator: NonNullable<CreateRule['operator']>;
  threshold: string;
  window_n: string;
  required_k: string;
  cooldown_seconds: string;
  clear_threshold: string;
  clear_k: string;
  reminder_interval_seconds: string;
  offline_after_seconds: string;
  scope: NonNullable<CreateRule['scope']>;
  tag: string;
  enabled: boolean;
}

export const EMPTY_RULE_FORM: RuleForm = {
  name: '',
  kind: 'threshold',
  metric: '',
  operator: '>',
  threshold: '',
  window_n: '5',
  required_k: '3',
  cooldown_seconds: '0',
  clear_threshold: '',
  clear_k: '',
  reminder_interval_seconds: '',
  offline_after_seconds: '900',
  scope: 'ALL',
  tag: '',
  enabled: true,
};

const text = (n: number | null | undefined): string =>
  n === null || n === undefined ? '' : String(n);

export function formOf(rule: Rule): RuleForm {
  return {
    name: rule.name,
    kind: rule.kind,
    metric: rule.metric ?? '',
    operator: (rule.operator ?? '>') as RuleForm['operator'],
    threshold: text(rule.threshold),
    window_n: text(rule.window_n),
    required_k: text(rule.required_k),
    cooldown_seconds: text(rule.cooldown_seconds),
    clear_threshold: text(rule.clear_threshold),
    clear_k: text(rule.clear_k),
    reminder_interval_seconds: text(rule.reminder_interval_seconds),
    offline_after_seconds: text(rule.offline_after_seconds),
    scope: rule.scope,
    tag: rule.tag ?? '',
    enabled: rule.enabled,
  };
}

/**
 * A number as typed. Anything that is not a plain number goes to the API as it is, so
 * the API's own 422 names the field: the console does not keep a second copy of the
 * rules' validation.
 */
const num = (value: string): number | string => {
  const trimmed = value.trim();
  return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
};

const THRESHOLD_FIELDS = [
  'metric',
  'operator',
  'threshold',
  'window_n',
  'required_k',
  'clear_threshold',
  'clear_k',
] as const;

/** The body of `POST /projects/{id}/rules`: only what applies to the kind, only what is set. */
export function createBody(form: RuleForm): CreateRule {
  const body: Record<string, unknown> = {
    name: form.name.trim(),
    kind: form.kind,
    scope: form.scope,
    enabled: form.enabled,
  };
  const set = (key: keyof RuleForm, value: unknown) => {
    if (value !== '') body[key] = value;
  };
  if (form.kind === 'threshold') {
    set('metric', form.metric.trim());
    set('operator', form.operator);
    for (const k of ['threshold', 'window_n', 'required_k', 'clear_threshold', 'clear_k'] as const)
      set(k, num(form[k]));
  } else {
    set('offline_after_seconds', num(form.offline_after_seconds));
  }
  set('cooldown_seconds', num(form.cooldown_seconds));
  set('reminder_interval_seconds', num(form.reminder_interval_seconds));
  if (form.scope === 'TAG') set('tag', form.tag.trim());
  return body as CreateRule;
}

/**
 * The body of `PATCH /rules/{id}`: the fields that changed. A cleared optional number
 * is sent as null (the API's "take it away"); `kind` cannot change.
 */
export function patchBody(before: RuleForm, after: RuleForm): UpdateRule {
  const created = createBody(after) as Record<string, unknown>;
  const body: Record<string, unknown> = {};
  const nullable = ['clear_threshold', 'clear_k', 'reminder_interval_seconds'] as const;
  for (const key of Object.keys(after) as (keyof RuleForm)[]) {
    if (key === 'kind' || before[key] === after[key]) continue;
    if (after.kind !== 'threshold' && (THRESHOLD_FIELDS as readonly string[]).includes(key))
      continue;
    if (key in created) body[key] = created[key];
    else if ((nullable as readonly string[]).includes(key) && after[key] === '') body[key] = null;
    else if (key === 'tag' && after.scope !== 'TAG') continue;
    else body[key] = typeof after[key] === 'string' ? (after[key] as string).trim() : after[key];
  }
  return body as UpdateRule;
}

/** The rule as the backtest takes it (threshold rules only). */
export function backtestRule(form: RuleForm): Schemas['BacktestRuleDto'] {
  const body = createBody(form) as Record<string, unknown>;
  const rule: Record<string, unknown> = {};
  for (const k of [...THRESHOLD_FIELDS, 'cooldown_seconds'] as const)
    if (body[k] !== undefined) rule[k] = body[k];
  return rule as Schemas['BacktestRuleDto'];
}

/** One line for a table: "temperature > 80, 3 of 5". */
export function describeRule(rule: Rule): string {
  if (rule.kind === 'offline') return `nothing heard for ${rule.offline_after_seconds} s`;
  return `${rule.metric} ${rule.operator} ${rule.threshold}, ${rule.required_k} of ${rule.window_n}`;
}

/**
 * Which devices a backtest of the form's rule covers, as the form says: a tag rule's tag,
 * a saved rule's assigned devices (`rule_id`), or every device of the project (an ALL
 * rule, or a new rule for assigned devices, which has none yet: `everyDevice` says so).
 */
export function backtestTarget(
  form: RuleForm,
  savedRuleId: string | null,
): { tag?: string; rule_id?: string; everyDevice: boolean } {
  if (form.scope === 'TAG') return { tag: form.tag.trim(), everyDevice: false };
  if (form.scope === 'EXPLICIT' && savedRuleId) return { rule_id: savedRuleId, everyDevice: false };
  return { everyDevice: true };
}
