import { RuleResponse } from './dto/rules.dto';
import { RuleEntity } from './entities/rule.entity';

export const toRuleResponse = (r: RuleEntity): RuleResponse => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  kind: r.kind ?? 'threshold',
  metric: r.metric,
  operator: r.operator,
  threshold: r.threshold,
  window_n: r.windowN,
  required_k: r.requiredK,
  cooldown_seconds: r.cooldownSeconds,
  clear_threshold: r.clearThreshold ?? null,
  clear_k: r.clearK ?? null,
  reminder_interval_seconds: r.reminderIntervalSeconds ?? null,
  offline_after_seconds: r.offlineAfterSeconds ?? null,
  scope: r.scope,
  tag: r.tag,
  enabled: r.enabled,
  created_at: r.createdAt.toISOString(),
  updated_at: r.updatedAt.toISOString(),
});
