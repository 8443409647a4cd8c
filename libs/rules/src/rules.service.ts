import { AppError, createdCursor, NotFoundError, Page, ProjectId, toPage } from '@app/common';
import { DevicesRepository } from '@app/tenancy';
import { AppConfig } from '@app/config';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { CreateRuleDto, RuleResponse, UpdateRuleDto } from './dto/rules.dto';
import type { Operator } from './evaluator';
import { RuleEntity, RuleKind } from './entities/rule.entity';
import { toRuleResponse } from './rules.mappers';
import { RulesRepository } from './rules.repository';

@Injectable()
export class RulesService {
  constructor(
    private readonly rules: RulesRepository,
    private readonly devices: DevicesRepository,
    config: ConfigService<AppConfig, true>,
  ) {
    this.quotas = config.get('quotas', { infer: true });
    this.minReminderSeconds = config.get('reminders', { infer: true }).minIntervalSeconds;
    this.minOfflineSeconds = config.get('offline', { infer: true }).minSeconds;
  }

  private readonly quotas: AppConfig['quotas'];
  private readonly minReminderSeconds: number;
  private readonly minOfflineSeconds: number;

  /** The operator's floors: a reminder interval or offline threshold under them is a 422. */
  private checkFloors(r: {
    reminderIntervalSeconds?: number | null;
    offlineAfterSeconds?: number | null;
  }): void {
    atLeast('reminder_interval_seconds', r.reminderIntervalSeconds, [
      this.minReminderSeconds,
      'REMINDER_MIN_INTERVAL_SECONDS',
    ]);
    atLeast('offline_after_seconds', r.offlineAfterSeconds, [
      this.minOfflineSeconds,
      'OFFLINE_MIN_SECONDS',
    ]);
  }

  async create(projectId: ProjectId, dto: CreateRuleDto): Promise<RuleResponse> {
    const values = {
      name: dto.name,
      kind: dto.kind ?? 'threshold',
      metric: dto.metric ?? null,
      operator: dto.operator ?? null,
      threshold: dto.threshold ?? null,
      windowN: dto.window_n ?? null,
      requiredK: dto.required_k ?? null,
      offlineAfterSeconds: dto.offline_after_seconds ?? null,
      cooldownSeconds: dto.cooldown_seconds ?? 0,
      clearThreshold: dto.clear_threshold ?? null,
      clearK: dto.clear_k ?? null,
      reminderIntervalSeconds: dto.reminder_interval_seconds ?? null,
      scope: dto.scope ?? 'ALL',
      tag: dto.tag ?? null,
      enabled: dto.enabled ?? true,
    };
    checkRule(values);
    this.checkFloors(values);
    return toRuleResponse(await this.rules.create(projectId, values, this.quotas.rulesPerProject));
  }

  async list(projectId: ProjectId, limit = 100, cursor?: string): Promise<Page<RuleResponse>> {
    return toPage(
      await this.rules.list(projectId, limit, cursor),
      limit,
      toRuleResponse,
      createdCursor,
    );
  }

  async get(projectId: ProjectId, ruleId: string): Promise<RuleResponse> {
    return toRuleResponse(await this.require(projectId, ruleId));
  }

  /** Returns the rule before and after, so the caller can react to it being disabled. */
  async update(
    projectId: ProjectId,
    ruleId: string,
    dto: UpdateRuleDto,
  ): Promise<{ before: RuleResponse; after: RuleResponse }> {
    const current = await this.require(projectId, ruleId);
    const changes: Partial<RuleEntity> = {
      ...(dto.name !== undefined && { name: dto.name }),
      ...(dto.metric !== undefined && { metric: dto.metric }),
      ...(dto.operator !== undefined && { operator: dto.operator }),
      ...(dto.threshold !== undefined && { threshold: dto.threshold }),
      ...(dto.window_n !== undefined && { windowN: dto.window_n }),
      ...(dto.required_k !== undefined && { requiredK: dto.required_k }),
      ...(dto.cooldown_seconds !== undefined && { cooldownSeconds: dto.cooldown_seconds }),
      ...(dto.clear_threshold !== undefined && { clearThreshold: dto.clear_threshold }),
      ...(dto.clear_k !== undefined && { clearK: dto.clear_k }),
      ...(dto.reminder_interval_seconds !== undefined && {
        reminderIntervalSeconds: dto.reminder_interval_seconds,
      }),
      ...(dto.offline_after_seconds !== undefined && {
        offlineAfterSeconds: dto.offline_after_seconds,
      }),
      ...(dto.scope !== undefined && { scope: dto.scope }),
      ...(dto.tag !== undefined && { tag: dto.tag }),
      ...(dto.enabled !== undefined && { enabled: dto.enabled }),
    };
    // Leaving TAG scope drops the tag unless the request sets one (which is then refused).
    if (changes.scope && changes.scope !== 'TAG' && dto.tag === undefined) changes.tag = null;
    checkRule({ ...current, ...changes });
    this.checkFloors(changes);
    if (Object.keys(changes).length > 0) await this.rules.update(projectId, ruleId, changes);
    // The window holds values of the old metric; the contract's window is of the new one.
    if (changes.metric !== undefined && changes.metric !== current.metric)
      await this.rules.resetState(projectId, ruleId);
    return {
      before: toRuleResponse(current),
      after: toRuleResponse(await this.require(projectId, ruleId)),
    };
  }

  async delete(projectId: ProjectId, ruleId: string): Promise<void> {
    if (!(await this.rules.delete(projectId, ruleId))) throw new NotFoundError('rule');
  }

  async assign(
    projectId: ProjectId,
    ruleId: string,
    deviceIds: string[],
  ): Promise<{ device_ids: string[] }> {
    await this.require(projectId, ruleId);
    const unique = [...new Set(deviceIds.map((d) => d.toLowerCase()))];
    const found = await Promise.all(unique.map((id) => this.devices.findById(projectId, id)));
    const missing = unique.filter((_, i) => !found[i]);
    if (missing.length > 0)
      throw new AppError('not_found', `device not found: ${missing.join(', ')}`);
    await this.rules.assign(projectId, ruleId, unique);
    return { device_ids: await this.rules.assigned(projectId, ruleId) };
  }

  async assigned(projectId: ProjectId, ruleId: string): Promise<{ device_ids: string[] }> {
    await this.require(projectId, ruleId);
    return { device_ids: await this.rules.assigned(projectId, ruleId) };
  }

  async unassign(projectId: ProjectId, ruleId: string, deviceId: string): Promise<void> {
    await this.require(projectId, ruleId);
    if (!(await this.rules.unassign(projectId, ruleId, deviceId)))
      throw new NotFoundError('device assignment');
  }

  private async require(projectId: ProjectId, ruleId: string): Promise<RuleEntity> {
    const rule = await this.rules.find(projectId, ruleId);
    if (!rule) throw new NotFoundError('rule');
    return rule;
  }
}

/**
 * Cross-field rules the DTO decorators cannot express; 422 naming the field (after
 * `prefix`: `rule.` where the fields are nested, as in a backtest).
 */
export function checkRule(
  r: {
    kind?: RuleKind;
    metric?: string | null;
    operator: Operator | null;
    threshold: number | null;
    windowN: number | null;
    requiredK: number | null;
    clearThreshold: number | null;
    clearK: number | null;
    offlineAfterSeconds?: number | null;
    scope: string;
    tag: string | null;
  },
  prefix = '',
): void {
  checkScope(r);
  if (r.kind === 'offline') {
    const given = (
      [
        ['metric', r.metric],
        ['operator', r.operator],
        ['threshold', r.threshold],
        ['window_n', r.windowN],
        ['required_k', r.requiredK],
        ['clear_threshold', r.clearThreshold],
        ['clear_k', r.clearK],
      ] as const
    ).filter(([, v]) => v !== null && v !== undefined);
    if (given.length > 0)
      throw new AppError('validation_failed', 'an offline rule watches arrival, not values', [
        ...given.map(([field]) => ({
          field: `${prefix}${field}`,
          message: `${field} is for threshold rules; an offline rule has offline_after_seconds only`,
        })),
      ]);
    return;
  }
  if (r.offlineAfterSeconds !== null && r.offlineAfterSeconds !== undefined)
    throw new AppError('validation_failed', 'offline_after_seconds is for offline rules', [
      {
        field: `${prefix}offline_after_seconds`,
        message: 'offline_after_seconds is for offline rules (kind: offline)',
      },
    ]);
  if (r.operator === null || r.threshold === null || r.windowN === null || r.requiredK === null)
    throw new AppError('validation_failed', 'a threshold rule needs its condition', [
      {
        field: `${prefix}metric`,
        message: 'a threshold rule needs metric, operator, threshold, window_n and required_k',
      },
    ]);
  if (r.requiredK > r.windowN) {
    throw new AppError('validation_failed', 'required_k must be at most window_n', [
      {
        field: `${prefix}required_k`,
        message: `required_k (${r.requiredK}) must be at most window_n (${r.windowN})`,
      },
    ]);
  }
  if (r.clearK !== null && r.clearK > r.windowN) {
    throw new AppError('validation_failed', 'clear_k must be at most window_n', [
      {
        field: `${prefix}clear_k`,
        message: `clear_k (${r.clearK}) must be at most window_n (${r.windowN})`,
      },
    ]);
  }
  if (r.clearThreshold !== null) {
    const wrongSide =
      r.operator === '==' || r.operator === '!='
        ? `clear_threshold is not for ${r.operator} rules (a value is equal or not); use clear_k`
        : (r.operator === '>' || r.operator === '>=') && r.clearThreshold > r.threshold
          ? `clear_threshold (${r.clearThreshold}) must be at most threshold (${r.threshold}) for a ${r.operator} rule`
          : (r.operator === '<' || r.operator === '<=') && r.clearThreshold < r.threshold
            ? `clear_threshold (${r.clearThreshold}) must be at least threshold (${r.threshold}) for a ${r.operator} rule`
            : null;
    if (wrongSide)
      throw new AppError('validation_failed', 'clear_threshold is on the wrong side', [
        { field: `${prefix}clear_threshold`, message: wrongSide },
      ]);
  }
}

/** A value under a floor the operator set (`setting`) is a 422 naming both; absent is fine. */
function atLeast(
  field: string,
  value: number | null | undefined,
  [min, setting]: [number, string],
): void {
  if (value == null || value >= min) return;
  throw new AppError('validation_failed', `${field} is too short`, [
    { field, message: `${field} must be at least ${min} (${setting})` },
  ]);
}

/** A TAG rule has a tag; no other rule has one. */
function checkScope(r: { scope: string; tag: string | null }): void {
  if (r.scope === 'TAG' && !r.tag) {
    throw new AppError('validation_failed', 'a TAG rule needs a tag', [
      { field: 'tag', message: 'tag is required when scope is TAG' },
    ]);
  }
  if (r.scope !== 'TAG' && r.tag) {
    throw new AppError('validation_failed', 'tag is only for TAG rules', [
      { field: 'tag', message: 'tag must be absent unless scope is TAG' },
    ]);
  }
}
