import { RuleResponse } from './dto/rules.dto';
import { RuleEntity } from './entities/rule.entity';

export const toRuleResponse = (r: RuleEntity): RuleResponse => ({
  id: r.id,
  project_id: r.projectId,
  name: r.name,
  metric: r.metric,
  operator: r.operator,
  threshold: r.threshold,
  window_n: r.windowN,
  required_k: r.requiredK,
  cooldown_seconds: r.cooldownSeconds,
  clear_threshold: r.clearThreshold,
  clear_k: r.clearK,
  scope: r.scope,
  tag: r.tag,
  enabled: r.enabled,
  created_at: r.createdAt.toISOString(),
  updated_at: r.updatedAt.toISOString(),
});
