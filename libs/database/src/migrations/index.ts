import { Tenancy1764250000000 } from './1764250000000-Tenancy';
import { Telemetry1764260000000 } from './1764260000000-Telemetry';
import { RulesAlerts1764270000000 } from './1764270000000-RulesAlerts';
import { Webhooks1764280000000 } from './1764280000000-Webhooks';
import { OutboxRelayedAt1764290000000 } from './1764290000000-OutboxRelayedAt';
import { TelemetryRejections1764300000000 } from './1764300000000-TelemetryRejections';
import { RuleNamesUnique1764310000000 } from './1764310000000-RuleNamesUnique';
import { WebhookTestEvents1764320000000 } from './1764320000000-WebhookTestEvents';
import { TelemetryPartitions1764330000000 } from './1764330000000-TelemetryPartitions';
import { ProjectRetention1764340000000 } from './1764340000000-ProjectRetention';
import { RuleHysteresis1764350000000 } from './1764350000000-RuleHysteresis';
import { Silences1764360000000 } from './1764360000000-Silences';
import { Reminders1764370000000 } from './1764370000000-Reminders';
import { OfflineRules1764380000000 } from './1764380000000-OfflineRules';
import { UndispatchedEventsByAlert1764390000000 } from './1764390000000-UndispatchedEventsByAlert';

/**
 * Every migration, in order. Listed explicitly (not globbed) so the bundled api, worker
 * and migrate entry points all carry the same set.
 */
export const migrations = [
  Tenancy1764250000000,
  Telemetry1764260000000,
  RulesAlerts1764270000000,
  Webhooks1764280000000,
  OutboxRelayedAt1764290000000,
  TelemetryRejections1764300000000,
  RuleNamesUnique1764310000000,
  WebhookTestEvents1764320000000,
  TelemetryPartitions1764330000000,
  ProjectRetention1764340000000,
  RuleHysteresis1764350000000,
  Silences1764360000000,
  Reminders1764370000000,
  OfflineRules1764380000000,
  UndispatchedEventsByAlert1764390000000,
];
