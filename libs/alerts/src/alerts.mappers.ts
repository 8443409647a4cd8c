import { AlertResponse } from './dto/alerts.dto';
import { AlertEntity } from './entities/alert.entity';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export const toAlertResponse = (a: AlertEntity): AlertResponse => ({
  id: a.id,
  project_id: a.projectId,
  rule_id: a.ruleId,
  device_id: a.deviceId,
  status: a.status,
  triggered_at: a.triggeredAt.toISOString(),
  acknowledged_at: iso(a.acknowledgedAt),
  resolved_at: iso(a.resolvedAt),
  created_at: a.createdAt.toISOString(),
  details: a.details,
});
