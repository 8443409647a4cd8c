import { AlertsService } from '@app/alerts';
import { ListQueryDto, PageOf, ProjectId } from '@app/common';
import {
  BacktestRequestDto,
  BacktestResponse,
  BacktestService,
  CreateRuleDto,
  RuleDevicesDto,
  RuleDevicesResponse,
  RuleResponse,
  RulesService,
  UpdateRuleDto,
} from '@app/rules';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { CurrentProject, RequireScope } from '../auth/auth.decorators';
import { ApiErrors } from '../http/api-errors.decorator';
import { UuidParam } from '../http/uuid-param.pipe';

@ApiTags('rules')
@Controller()
export class RulesController {
  constructor(
    private readonly rules: RulesService,
    private readonly alerts: AlertsService,
    private readonly backtests: BacktestService,
  ) {}

  @Post('projects/:project_id/rules')
  @HttpCode(201)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Create a k-of-n threshold rule' })
  @ApiCreatedResponse({ type: RuleResponse })
  @ApiErrors(404, 422, { 409: 'the project has a rule of that name (case-insensitively)' })
  create(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Body() dto: CreateRuleDto,
  ): Promise<RuleResponse> {
    return this.rules.create(projectId, dto);
  }

  @Post('projects/:project_id/rules/backtest')
  @HttpCode(200)
  @RequireScope('read')
  @ApiOperation({
    summary: 'Backtest a rule on stored readings',
    description:
      'Runs the evaluator the worker uses over the readings stored in [from, to), per device ' +
      'from an empty state, and returns the transitions the rule would have produced. A saved ' +
      'rule (`rule_id`, optionally with changes in `rule`) or an unsaved one (`rule`). Writes ' +
      'nothing. Bounded by BACKTEST_MAX_READINGS and BACKTEST_MAX_DEVICES (422 naming them); ' +
      "counts as one of the project's TELEMETRY_READS_PER_PROJECT reads (429 past them).",
  })
  @ApiOkResponse({ type: BacktestResponse })
  @ApiErrors(404, 422)
  backtest(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Body() dto: BacktestRequestDto,
  ): Promise<BacktestResponse> {
    return this.backtests.run(projectId, dto);
  }

  @Get('projects/:project_id/rules')
  @RequireScope('read')
  @ApiOperation({ summary: "List the project's rules, oldest first" })
  @ApiOkResponse({ type: PageOf(RuleResponse, 'RulePage') })
  @ApiErrors(404)
  list(
    @Param('project_id', new UuidParam('project')) _projectId: string,
    @CurrentProject() projectId: ProjectId,
    @Query() q: ListQueryDto,
  ) {
    return this.rules.list(projectId, q.limit, q.cursor);
  }

  @Get('rules/:rule_id')
  @RequireScope('read')
  @ApiOperation({ summary: 'Get a rule' })
  @ApiOkResponse({ type: RuleResponse })
  @ApiErrors(404)
  get(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
  ): Promise<RuleResponse> {
    return this.rules.get(projectId, ruleId);
  }

  @Patch('rules/:rule_id')
  @RequireScope('manage')
  @ApiOperation({
    summary:
      'Change a rule; it applies from the next reading. Disabling it resolves its open alerts.',
  })
  @ApiOkResponse({ type: RuleResponse })
  @ApiErrors(404, 422, { 409: 'another rule of the project has that name' })
  async update(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
    @Body() dto: UpdateRuleDto,
  ): Promise<RuleResponse> {
    const { before, after } = await this.rules.update(projectId, ruleId, dto);
    if (before.enabled && !after.enabled)
      await this.alerts.closeRule(projectId, ruleId, 'rule_disabled');
    return after;
  }

  @Delete('rules/:rule_id')
  @HttpCode(204)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Delete a rule; its open alerts are resolved, its alert history stays' })
  @ApiNoContentResponse()
  @ApiErrors(404)
  async delete(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
  ): Promise<void> {
    await this.rules.get(projectId, ruleId);
    await this.alerts.closeRule(projectId, ruleId, 'rule_deleted');
    await this.rules.delete(projectId, ruleId);
  }

  @Post('rules/:rule_id/devices')
  @HttpCode(200)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Assign devices to an EXPLICIT rule (idempotent)' })
  @ApiOkResponse({ type: RuleDevicesResponse })
  @ApiErrors(422, { 404: 'unknown rule, or a device not in the project' })
  assign(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
    @Body() dto: RuleDevicesDto,
  ): Promise<RuleDevicesResponse> {
    return this.rules.assign(projectId, ruleId, dto.device_ids);
  }

  @Get('rules/:rule_id/devices')
  @RequireScope('read')
  @ApiOperation({ summary: 'Devices assigned to a rule' })
  @ApiOkResponse({ type: RuleDevicesResponse })
  @ApiErrors(404)
  assigned(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
  ): Promise<RuleDevicesResponse> {
    return this.rules.assigned(projectId, ruleId);
  }

  @Delete('rules/:rule_id/devices/:device_id')
  @HttpCode(204)
  @RequireScope('manage')
  @ApiOperation({ summary: 'Unassign a device from a rule' })
  @ApiNoContentResponse()
  @ApiErrors(404)
  async unassign(
    @CurrentProject() projectId: ProjectId,
    @Param('rule_id', new UuidParam('rule')) ruleId: string,
    @Param('device_id', new UuidParam('device')) deviceId: string,
  ): Promise<void> {
    await this.rules.unassign(projectId, ruleId, deviceId);
  }
}
