import { isoOrNull } from '@app/common';
import { AlertResponse } from './dto/alerts.dto';
import { AlertEntity } from './entities/alert.entity';

export const toAlertResponse = (a: AlertEntity): AlertResponse => ({
  id: a.id,
  project_id: a.projectId,
  rule_id: a.ruleId,
  device_id: a.deviceId,
  status: a.status,
  triggered_at: a.triggeredAt.toISOString(),
  acknowledged_at: isoOrNull(a.acknowledgedAt),
  resolved_at: isoOrNull(a.resolvedAt),
  created_at: a.createdAt.toISOString(),
  details: a.details,
  silenced_by: a.silencedBy ?? null,
  reminders_sent: a.remindersSent ?? 0,
});
