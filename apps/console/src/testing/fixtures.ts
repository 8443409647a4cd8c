import type { Schemas } from '../api/client';

/** A saved threshold rule as the API answers it, for the console's unit tests. */
export const savedRule = (
  over: Partial<Schemas['RuleResponse']> = {},
): Schemas['RuleResponse'] => ({
  id: 'r',
  project_id: 'p',
  name: 'Too hot',
  kind: 'threshold',
  metric: 'temperature',
  operator: '>',
  threshold: 50,
  window_n: 3,
  required_k: 2,
  cooldown_seconds: 0,
  clear_threshold: null,
  clear_k: null,
  reminder_interval_seconds: null,
  offline_after_seconds: null,
  scope: 'ALL',
  tag: null,
  enabled: true,
  created_at: '2026-01-01T00:00:00Z',
  updated_at: '2026-01-01T00:00:00Z',
  ...over,
});
