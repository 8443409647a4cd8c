import { AppError, asProjectDeviceId, NotFoundError, ProjectId } from '@app/common';
import { AppConfig } from '@app/config';
import { TelemetryReadsService, TelemetryRepository } from '@app/telemetry';
import { DeviceEntity, DevicesRepository } from '@app/tenancy';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  BacktestDevice,
  BacktestRequestDto,
  BacktestResponse,
  BacktestRuleDto,
  BacktestTransition,
} from './dto/backtest.dto';
import { isThresholdRule, RuleEntity } from './entities/rule.entity';
import { emptyState, evaluate, RuleSpec } from './evaluator';
import { RulesRepository } from './rules.repository';
import { checkRule } from './rules.service';

/** Readings read and evaluated per round trip: the live evaluation's chunk. */
export const BACKTEST_CHUNK = 5000;

const REQUIRED: Array<keyof BacktestRuleDto> = [
  'metric',
  'operator',
  'threshold',
  'window_n',
  'required_k',
];

/**
 * "Would this rule have fired, and how often?" The pure evaluator the worker runs, over
 * the readings already stored in [from, to), per device from an empty state, in chunks of
 * {@link BACKTEST_CHUNK}. Reads only: no alert, state or event is written. Bounded by
 * `BACKTEST_MAX_READINGS` and `BACKTEST_MAX_DEVICES` (422 naming them), and run as one of
 * the project's `TELEMETRY_READS_PER_PROJECT` slots.
 */
@Injectable()
export class BacktestService {
  private readonly limits: AppConfig['backtest'];

  constructor(
    private readonly rules: RulesRepository,
    private readonly devices: DevicesRepository,
    private readonly telemetry: TelemetryRepository,
    private readonly reads: TelemetryReadsService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.limits = config.get('backtest', { infer: true });
  }

  async run(projectId: ProjectId, dto: BacktestRequestDto): Promise<BacktestResponse> {
    const from = new Date(dto.from);
    const to = new Date(dto.to);
    if (to.getTime() <= from.getTime())
      throw new AppError('validation_failed', 'to must be after from', [
        { field: 'to', message: `to (${dto.to}) must be after from (${dto.from})` },
      ]);
    const saved = dto.rule_id ? await this.rules.find(projectId, dto.rule_id) : null;
    if (dto.rule_id && !saved) throw new NotFoundError('rule');
    const spec = this.specOf(saved, dto.rule);
    const devices = await this.devicesOf(projectId, saved, dto);
    const limit = dto.transitions_limit ?? 100;

    return this.reads.gated(projectId, async () => {
      let budget = this.limits.maxReadings;
      const results: BacktestDevice[] = [];
      for (const device of devices) {
        const id = asProjectDeviceId(device.id);
        const out: BacktestDevice = {
          device_id: device.id,
          external_id: device.externalId,
          readings: 0,
          opened: 0,
          resolved: 0,
          open_at_end: false,
          transitions: [],
          truncated: false,
        };
        let state = emptyState();
        let after: number | null = null;
        for (;;) {
          const chunk = await this.telemetry.numericReadingsBetween(
            id,
            spec.metric,
            { from, to, after },
            Math.min(BACKTEST_CHUNK, budget + 1),
          );
          if (chunk.length > budget) throw this.overBudget();
          budget -= chunk.length;
          out.readings += chunk.length;
          const result = evaluate(spec, state, chunk);
          state = result.state;
          for (const t of result.transitions) {
            if (t.kind === 'open') out.opened++;
            else out.resolved++;
            if (out.transitions.length < limit) out.transitions.push(toTransition(t));
            else out.truncated = true;
          }
          if (chunk.length < BACKTEST_CHUNK) break;
          after = chunk[chunk.length - 1].ts;
        }
        out.open_at_end = state.open;
        results.push(out);
      }
      return {
        rule_id: saved?.id ?? null,
        rule: {
          metric: spec.metric,
          operator: spec.operator,
          threshold: spec.threshold,
          window_n: spec.windowN,
          required_k: spec.requiredK,
          cooldown_seconds: spec.cooldownSeconds,
          clear_threshold: spec.clearThreshold ?? null,
          clear_k: spec.clearK ?? null,
        },
        from: from.toISOString(),
        to: to.toISOString(),
        readings: results.reduce((n, d) => n + d.readings, 0),
        opened: results.reduce((n, d) => n + d.opened, 0),
        resolved: results.reduce((n, d) => n + d.resolved, 0),
        devices: results,
      };
    });
  }

  /** The saved rule with the request's changes, or the request's rule; 422 naming a gap. */
  private specOf(saved: RuleEntity | null, rule: BacktestRuleDto | undefined): RuleSpec {
    const r = rule ?? {};
    if (saved && !isThresholdRule(saved))
      throw new AppError(
        'validation_failed',
        'a backtest replays readings through a threshold rule',
        [
          {
            field: 'rule_id',
            message:
              'rule_id names an offline rule: it watches arrival time, which stored readings do not replay',
          },
        ],
      );
    if (!saved) {
      const missing = REQUIRED.filter((f) => r[f] === undefined);
      if (!rule || missing.length > 0)
        throw new AppError(
          'validation_failed',
          'give rule_id, or the rule to try as `rule`',
          (rule ? missing.map((f) => `rule.${f}`) : ['rule']).map((field) => ({
            field,
            message: `${field} is required unless rule_id is given`,
          })),
        );
    }
    const pick = <T>(given: T | undefined, fallback: T | undefined): T =>
      (given !== undefined ? given : fallback) as T;
    const spec = {
      metric: pick(r.metric, saved?.metric),
      operator: pick(r.operator, saved?.operator),
      threshold: pick(r.threshold, saved?.threshold),
      windowN: pick(r.window_n, saved?.windowN),
      requiredK: pick(r.required_k, saved?.requiredK),
      cooldownSeconds: pick(r.cooldown_seconds, saved?.cooldownSeconds ?? 0),
      clearThreshold: pick(r.clear_threshold, saved?.clearThreshold ?? null),
      clearK: pick(r.clear_k, saved?.clearK ?? null),
    };
    checkRule({ ...spec, scope: 'ALL', tag: null }, 'rule.');
    return spec;
  }

  /**
   * `device_ids` (each must be the project's), else the project's devices with `tag`, else
   * the saved rule's (its scope as evaluation applies it now), else all of the project's.
   */
  private async devicesOf(
    projectId: ProjectId,
    saved: RuleEntity | null,
    dto: BacktestRequestDto,
  ): Promise<DeviceEntity[]> {
    const max = this.limits.maxDevices;
    let which: { ids?: string[]; tag?: string } = {};
    if (dto.device_ids) which = { ids: [...new Set(dto.device_ids.map((d) => d.toLowerCase()))] };
    else if (dto.tag !== undefined) which = { tag: dto.tag };
    else if (saved?.scope === 'TAG' && saved.tag) which = { tag: saved.tag };
    else if (saved?.scope === 'EXPLICIT') {
      const ids = await this.rules.assigned(projectId, saved.id);
      if (ids.length === 0) return [];
      which = { ids };
    }
    const found = await this.devices.select(projectId, which, max + 1);
    if (dto.device_ids) {
      const known = new Set(found.map((d) => d.id));
      const missing = which.ids!.filter((id) => !known.has(id));
      if (missing.length > 0)
        throw new AppError('not_found', `device not found: ${missing.join(', ')}`);
    }
    if (found.length > max)
      throw new AppError(
        'validation_failed',
        `a backtest covers at most ${max} devices (BACKTEST_MAX_DEVICES); pass device_ids or a tag`,
        [
          {
            field: dto.tag !== undefined ? 'tag' : 'device_ids',
            message: `at most ${max} devices per backtest (BACKTEST_MAX_DEVICES)`,
          },
        ],
      );
    return found;
  }

  private overBudget(): AppError {
    const max = this.limits.maxReadings;
    return new AppError(
      'validation_failed',
      `the range holds more than ${max} readings of the metric for these devices (BACKTEST_MAX_READINGS); narrow from-to or the devices`,
      [
        {
          field: 'from',
          message: `at most ${max} readings per backtest (BACKTEST_MAX_READINGS)`,
        },
      ],
    );
  }
}

function toTransition(t: ReturnType<typeof evaluate>['transitions'][number]): BacktestTransition {
  const at = new Date(t.at).toISOString();
  if (t.kind === 'resolve') return { kind: 'resolve', at };
  return {
    kind: 'open',
    at,
    window: t.window.map((w) => ({
      ts: new Date(w.ts).toISOString(),
      value: w.value,
      breached: w.breached,
    })),
  };
}
