import { DeviceAlertLock, DeviceAlertsRepository, OutboxRelay } from '@app/alerts';
import { PeriodicTask } from '@app/common';
import { AppConfig, WorkerRoles } from '@app/config';
import { MetricsService } from '@app/observability';
import { IngestBacklog } from '@app/telemetry';
import { DeviceProgressRepository } from '@app/tenancy';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { OfflineRulesRepository } from './offline-rules.repository';
import { toRuleResponse } from './rules.mappers';

/** Devices a rule's scan takes per transaction; a rule with more loops. */
export const OFFLINE_SCAN_PAGE = 1000;

/** What one pass did. */
export interface OfflineScanSummary {
  rules: number;
  /** Devices read past the watermark (each is read once per time it goes quiet). */
  devices: number;
  opened: number;
}

/**
 * Offline rules: a device covered by an enabled offline rule and heard from at least
 * once goes offline when nothing has arrived from it for `offline_after_seconds` of
 * arrival time (`devices.last_seen_at`, the api's accept time of its newest stored batch).
 * Every `OFFLINE_SCAN_INTERVAL_MS`, where the evaluate role runs, each rule in its own
 * transactions (locked, SKIP LOCKED: several workers split the rules, never share one):
 *
 * 1. the devices of the rule's project (and tag, or assignment) last heard from between
 *    the rule's watermark and now − T, oldest first, a page at a time, read from
 *    `devices (project_id, last_seen_at)` and locked (a device whose batch is being
 *    stored is skipped: it is being heard from);
 * 2. skipped too: a device with a batch accepted but not stored yet (the project's backlog
 *    in Redis), or under evaluation (its alert lock is taken): a worker backlog never reads
 *    as a fleet gone quiet;
 * 3. for the others, unless the rule has an active alert for the device, an alert opens
 *    with a `device.offline` event, triggered at last_seen_at + T;
 * 4. the watermark moves to the last device read (now − T once the range is exhausted).
 *
 * So each device is read once each time it goes quiet, however long it stays so: the
 * scan's cost follows the devices that went quiet since the last pass, not the fleet.
 * Its next reading resolves the alert (`device.online`, in rule evaluation).
 */
@Injectable()
export class OfflineScan implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OfflineScan.name);
  private readonly task: PeriodicTask;
  private readonly opened: Counter;
  private readonly duration: Histogram;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rules: OfflineRulesRepository,
    private readonly devices: DeviceProgressRepository,
    private readonly lock: DeviceAlertLock,
    private readonly alerts: DeviceAlertsRepository,
    private readonly backlog: IngestBacklog,
    private readonly outbox: OutboxRelay,
    private readonly roles: WorkerRoles,
    config: ConfigService<AppConfig, true>,
    metrics: MetricsService,
  ) {
    this.task = new PeriodicTask(
      config.get('offline', { infer: true }).scanIntervalMs,
      () => this.run(),
      this.logger,
      'offline scan failed',
    );
    this.opened = metrics.counter(
      'rules_offline_opened_total',
      'alerts opened by the offline scan (devices gone quiet)',
    );
    this.duration = metrics.histogram(
      'rules_offline_scan_seconds',
      'duration of one offline scan over every offline rule',
      [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    );
  }

  onApplicationBootstrap(): void {
    if (this.roles.runs('evaluate', 'offline scan')) this.task.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /**
   * One pass over every enabled offline rule. A rule another scanner holds is skipped
   * (that scanner does the work), or, with `wait`, scanned after it.
   */
  async run(now = new Date(), { wait = false } = {}): Promise<OfflineScanSummary> {
    const end = this.duration.startTimer();
    const summary: OfflineScanSummary = { rules: 0, devices: 0, opened: 0 };
    for (const ruleId of await this.rules.enabledIds(this.dataSource.manager)) {
      const { devices, opened } = await this.scanRule(ruleId, now, wait);
      summary.rules++;
      summary.devices += devices;
      summary.opened += opened;
    }
    end();
    if (summary.opened > 0) {
      this.opened.inc(summary.opened);
      await this.outbox.relay().catch(() => undefined);
    }
    return summary;
  }

  private async scanRule(
    ruleId: string,
    now: Date,
    wait: boolean,
  ): Promise<{ devices: number; opened: number }> {
    let devices = 0;
    let opened = 0;
    // Within a pass, pages follow each other by (last_seen_at, id): any number of devices
    // heard at one instant is read once.
    let after: { lastSeenAt: Date; id: string } | undefined;
    for (;;) {
      const page = await this.dataSource.transaction(async (em) => {
        const locked = await this.rules.lock(em, ruleId, { wait });
        if (!locked) return null;
        const { rule, scannedUntil } = locked;
        const afterMs = (rule.offlineAfterSeconds ?? 0) * 1000;
        const before = new Date(now.getTime() - afterMs);
        if (scannedUntil && scannedUntil >= before) return null;
        const quiet = await this.devices.quietBetween(
          em,
          {
            projectId: rule.projectId,
            from: after?.lastSeenAt ?? scannedUntil,
            afterId: after?.id,
            before,
            tag: rule.scope === 'TAG' ? (rule.tag ?? undefined) : undefined,
            ids: rule.scope === 'EXPLICIT' ? await this.rules.assigned(em, rule.id) : undefined,
          },
          OFFLINE_SCAN_PAGE,
        );
        const queued = quiet.length > 0 ? await this.backlog.queuedDevices(rule.projectId) : null;
        let openedHere = 0;
        // A device with a batch on its way, or under evaluation (or an ack), is not
        // decided now: the pass stops there and the next one reads it again, so a batch
        // that never lands (set aside as poison, say) cannot hide the device for good.
        let stoppedAt: Date | undefined;
        for (const device of quiet) {
          if (queued?.has(device.id) || !(await this.lock.tryTake(em, device.id))) {
            stoppedAt = device.lastSeenAt;
            break;
          }
          if ((await this.alerts.active(em, device.id)).has(rule.id)) continue;
          const alert = await this.alerts.open(
            em,
            {
              projectId: rule.projectId,
              ruleId: rule.id,
              deviceId: device.id,
              triggeredAt: new Date(device.lastSeenAt.getTime() + afterMs),
              details: {
                rule: toRuleResponse(rule),
                last_seen_at: device.lastSeenAt.toISOString(),
              },
            },
            'device.offline',
          );
          openedHere++;
          this.logger.log(
            {
              projectId: rule.projectId,
              ruleId: rule.id,
              deviceId: device.id,
              alertId: alert.id,
              lastSeenAt: device.lastSeenAt.toISOString(),
            },
            'device offline: alert opened',
          );
        }
        const full = !stoppedAt && quiet.length === OFFLINE_SCAN_PAGE;
        const last = quiet[quiet.length - 1];
        // Stopped, or a full page: the watermark is that device's time (a later pass starting
        // there reads that instant's devices again; an active alert keeps them from opening
        // twice). Otherwise the whole range is read.
        await this.rules.advance(em, rule.id, stoppedAt ?? (full ? last.lastSeenAt : before));
        return { devices: quiet.length, opened: openedHere, full, last };
      });
      if (!page) break;
      devices += page.devices;
      opened += page.opened;
      if (!page.full) break;
      after = page.last;
    }
    return { devices, opened };
  }
}
