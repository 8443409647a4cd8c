import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Schemas } from '../api/client';
import { fieldErrors, unwrap } from '../api/errors';
import { can, needs } from '../lib/permissions';
import {
  backtestRule,
  backtestTarget,
  createBody,
  EMPTY_RULE_FORM,
  formOf,
  patchBody,
  type RuleForm,
} from '../lib/rule-form';
import { openedPerBucket } from '../lib/series';
import { bucketFor, plural, toIso } from '../lib/time';
import { useSession } from '../session';
import { TimeChart } from './TimeChart';
import { ErrorBanner } from './ui';

const OPERATORS: Array<[RuleForm['operator'], string]> = (
  ['>', '>=', '<', '<=', '==', '!='] as const
).map((o) => [o, o]);
const KINDS: Array<[RuleForm['kind'], string]> = [
  ['threshold', 'threshold (k of the last n readings)'],
  ['offline', 'offline (nothing heard for a while)'],
];
const SCOPES: Array<[RuleForm['scope'], string]> = [
  ['ALL', 'every device'],
  ['TAG', 'devices with a tag'],
  ['EXPLICIT', 'devices assigned to the rule'],
];
/** The threshold kind's number inputs: field, label, hint. */
const THRESHOLD_NUMBERS: Array<[keyof RuleForm, string, string?]> = [
  ['threshold', 'Threshold'],
  ['window_n', 'Window (n readings)'],
  ['required_k', 'Breaching (k of n)'],
  ['clear_threshold', 'Clear threshold (hysteresis)', 'optional'],
  ['clear_k', 'Clear k', 'optional'],
];
const BACKTEST_RANGES = [
  ['Last 24 hours', 86400],
  ['Last 7 days', 7 * 86400],
] as const;
const OPENED_SERIES: uPlot.Series[] = [
  { label: 'alerts opened', stroke: '#b91c1c', fill: 'rgba(185, 28, 28, 0.35)' },
];

function Field(props: {
  id: string;
  label: string;
  error?: string;
  hint?: string;
  children: ComponentChildren;
}) {
  return (
    <div class={`field${props.error ? ' invalid' : ''}`} data-field={props.id}>
      <label for={`rule-${props.id}`}>{props.label}</label>
      {props.children}
      {props.hint && (
        <small id={`${props.id}-hint`} class="muted">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={`${props.id}-error`} class="field-error">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** Create or edit a rule; what the API refuses shows beside the field it names. */
export function RuleEditor(props: {
  rule: Schemas['RuleResponse'] | null;
  onSaved: (rule: Schemas['RuleResponse']) => void;
  onCancel: () => void;
}) {
  const { api, key } = useSession();
  const initial = useMemo(() => (props.rule ? formOf(props.rule) : EMPTY_RULE_FORM), [props.rule]);
  const [form, setForm] = useState<RuleForm>(initial);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const [backtest, setBacktest] = useState<{
    result?: Schemas['BacktestResponse'];
    error?: unknown;
    busy?: boolean;
  }>({});
  const errors = fieldErrors(error);
  const allowed = can(key.scopes, 'manage');
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) =>
    setForm((f) => ({ ...f, [k]: v }));
  /** An input; `hinted`: its Field shows a hint, which describes it too. */
  const text = (k: keyof RuleForm, type = 'text', hinted = false) => (
    <input
      id={`rule-${k}`}
      type={type}
      value={form[k] as string}
      disabled={!allowed}
      aria-invalid={errors[k] ? true : undefined}
      aria-describedby={
        [hinted && `${k}-hint`, errors[k] && `${k}-error`].filter(Boolean).join(' ') || undefined
      }
      onInput={(e) => set(k, e.currentTarget.value as never)}
      step={type === 'number' ? 'any' : undefined}
    />
  );

  /** A select of `options` ([value, text]); `locked`: shown but not changeable. */
  const choice = <K extends 'kind' | 'operator' | 'scope'>(
    k: K,
    options: Array<[RuleForm[K], string]>,
    opts: { locked?: boolean; hinted?: boolean } = {},
  ) => (
    <select
      id={`rule-${k}`}
      aria-describedby={opts.hinted ? `${k}-hint` : undefined}
      value={form[k]}
      disabled={!allowed || opts.locked}
      onChange={(e) => set(k, e.currentTarget.value as RuleForm[K])}
    >
      {options.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </select>
  );
  const numberField = (k: keyof RuleForm, label: string, hint?: string) => (
    <Field key={k} id={k} label={label} error={errors[k]} hint={hint}>
      {text(k, 'number', Boolean(hint))}
    </Field>
  );

  const save = async () => {
    setSaving(true);
    setError(null);
    try {
      const saved = props.rule
        ? await unwrap(
            api.PATCH('/rules/{rule_id}', {
              params: { path: { rule_id: props.rule.id } },
              body: patchBody(initial, form),
            }),
          )
        : await unwrap(
            api.POST('/projects/{project_id}/rules', {
              params: { path: { project_id: key.project.id } },
              body: createBody(form),
            }),
          );
      props.onSaved(saved);
    } catch (e) {
      setError(e);
    } finally {
      setSaving(false);
    }
  };

  const target = backtestTarget(form, props.rule?.id ?? null);
  const runBacktest = async (seconds: number) => {
    setBacktest({ busy: true });
    const to = Math.ceil(Date.now() / 1000);
    try {
      const result = await unwrap(
        api.POST('/projects/{project_id}/rules/backtest', {
          params: { path: { project_id: key.project.id } },
          body: {
            rule: backtestRule(form),
            ...(target.tag !== undefined && { tag: target.tag }),
            ...(target.rule_id !== undefined && { rule_id: target.rule_id }),
            from: toIso(to - seconds),
            to: toIso(to),
            transitions_limit: 1000,
          },
        }),
      );
      setBacktest({ result });
    } catch (e) {
      setBacktest({ error: e });
    }
  };
  const preview = backtest.result
    ? openedPerBucket(
        backtest.result,
        bucketFor(
          Date.parse(backtest.result.to) / 1000 - Date.parse(backtest.result.from) / 1000,
          48,
        ),
      )
    : null;

  return (
    <form
      class="rule-form"
      aria-labelledby="rule-form-title"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h2 id="rule-form-title">{props.rule ? `Edit ${props.rule.name}` : 'New rule'}</h2>
      {!allowed && <p class="muted">{needs('manage')}</p>}
      <div class="grid">
        <Field id="name" label="Name" error={errors.name}>
          {text('name')}
        </Field>
        <Field
          id="kind"
          label="Kind"
          error={errors.kind}
          hint={props.rule ? 'cannot change once created' : undefined}
        >
          {choice('kind', KINDS, { locked: Boolean(props.rule), hinted: Boolean(props.rule) })}
        </Field>
        {form.kind === 'threshold' ? (
          <>
            <Field id="metric" label="Metric" error={errors.metric}>
              {text('metric')}
            </Field>
            <Field id="operator" label="Operator" error={errors.operator}>
              {choice('operator', OPERATORS)}
            </Field>
            {THRESHOLD_NUMBERS.map(([k, label, hint]) => numberField(k, label, hint))}
          </>
        ) : (
          numberField('offline_after_seconds', 'Offline after (seconds)')
        )}
        {numberField('cooldown_seconds', 'Cooldown (seconds)')}
        {numberField('reminder_interval_seconds', 'Remind every (seconds)', 'optional')}
        <Field id="scope" label="Devices" error={errors.scope}>
          {choice('scope', SCOPES)}
        </Field>
        {form.scope === 'TAG' && (
          <Field id="tag" label="Tag" error={errors.tag}>
            {text('tag')}
          </Field>
        )}
        <div class="field check">
          <label>
            <input
              type="checkbox"
              checked={form.enabled}
              disabled={!allowed}
              onChange={(e) => set('enabled', e.currentTarget.checked)}
            />
            Enabled
          </label>
        </div>
      </div>
      {error !== null && (
        <div class="error" role="alert">
          <p>{(error as Error).message}</p>
          {Object.keys(errors).length > 0 && (
            <ul>
              {Object.entries(errors).map(([field, message]) => (
                <li key={field}>
                  <strong>{field}</strong>: {message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div class="buttons">
        <button
          type="submit"
          disabled={!allowed || saving}
          title={allowed ? undefined : needs('manage')}
        >
          {saving ? 'Saving…' : props.rule ? 'Save changes' : 'Create rule'}
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>

      {form.kind === 'threshold' && (
        <section class="backtest" aria-labelledby="backtest-title">
          <h3 id="backtest-title">Backtest on stored readings</h3>
          <p class="muted">
            What this rule would have done, without saving it or sending anything, over{' '}
            {form.scope === 'TAG'
              ? `the devices tagged ${form.tag.trim() || '…'}`
              : form.scope === 'EXPLICIT' && props.rule
                ? 'the devices assigned to it'
                : form.scope === 'EXPLICIT'
                  ? 'every device of the project (a new rule has no devices assigned yet)'
                  : 'every device of the project'}
            .
          </p>
          {BACKTEST_RANGES.map(([label, seconds]) => (
            <button
              type="button"
              key={seconds}
              disabled={backtest.busy}
              onClick={() => void runBacktest(seconds)}
            >
              {label}
            </button>
          ))}
          <ErrorBanner error={backtest.error} />
          {backtest.result && preview && (
            <>
              <p>
                {plural(backtest.result.readings, 'reading')} of{' '}
                {plural(backtest.result.devices.length, 'device')}:{' '}
                {plural(backtest.result.opened, 'alert')} would have opened,{' '}
                {backtest.result.resolved} resolved.
                {backtest.result.devices.some((d) => d.truncated) &&
                  ' The chart shows the first 1,000 transitions of each device; some had more.'}
              </p>
              <TimeChart
                label={`Alerts the rule would have opened per ${preview.xs.length > 1 ? preview.xs[1] - preview.xs[0] : 0} seconds`}
                data={[preview.xs, preview.opened]}
                series={OPENED_SERIES}
                height={160}
                bars
              />
            </>
          )}
        </section>
      )}
    </form>
  );
}
