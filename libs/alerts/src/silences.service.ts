import { AppError, createdCursor, NotFoundError, Page, ProjectId, toPage } from '@app/common';
import { DevicesRepository } from '@app/tenancy';
import { Injectable } from '@nestjs/common';
import { CreateSilenceDto, SilenceResponse } from './dto/silences.dto';
import { SilenceEntity, SilenceState, silenceState } from './entities/silence.entity';
import { SilencesRepository } from './silences.repository';

const toSilenceResponse = (s: SilenceEntity, now = new Date()): SilenceResponse => ({
  id: s.id,
  project_id: s.projectId,
  rule_id: s.ruleId,
  device_id: s.deviceId,
  tag: s.tag,
  starts_at: s.startsAt.toISOString(),
  ends_at: s.endsAt.toISOString(),
  comment: s.comment,
  created_by: s.createdBy,
  created_at: s.createdAt.toISOString(),
  state: silenceState(s, now),
});

/**
 * Silences through the API: create, list, get, expire. What they do to webhook events is
 * the fan-out's ({@link SilencesRepository.mutingSilences}) and {@link SilenceRelease}'s.
 * The rule a silence names is checked by the caller (rules sit above alerts).
 */
@Injectable()
export class SilencesService {
  constructor(
    private readonly silences: SilencesRepository,
    private readonly devices: DevicesRepository,
  ) {}

  async create(projectId: ProjectId, dto: CreateSilenceDto): Promise<SilenceResponse> {
    if (dto.rule_id === undefined && dto.device_id === undefined && dto.tag === undefined)
      throw new AppError('validation_failed', 'a silence needs at least one matcher', [
        {
          field: 'rule_id',
          message:
            'give at least one of rule_id, device_id and tag: a silence never covers a whole project by accident',
        },
      ]);
    const now = new Date();
    const startsAt = dto.starts_at ? new Date(dto.starts_at) : now;
    const endsAt = new Date(dto.ends_at);
    if (endsAt.getTime() <= Math.max(startsAt.getTime(), now.getTime()))
      throw new AppError('validation_failed', 'ends_at must be after starts_at and in the future', [
        {
          field: 'ends_at',
          message: `ends_at (${endsAt.toISOString()}) must be after starts_at (${startsAt.toISOString()}) and now`,
        },
      ]);
    if (dto.device_id !== undefined && !(await this.devices.findById(projectId, dto.device_id)))
      throw new NotFoundError('device');
    const created = await this.silences.create(projectId, {
      ruleId: dto.rule_id?.toLowerCase() ?? null,
      deviceId: dto.device_id?.toLowerCase() ?? null,
      tag: dto.tag ?? null,
      startsAt,
      endsAt,
      comment: dto.comment,
      createdBy: dto.created_by,
    });
    return toSilenceResponse(created);
  }

  async list(
    projectId: ProjectId,
    state: SilenceState | undefined,
    limit = 100,
    cursor?: string,
  ): Promise<Page<SilenceResponse>> {
    const now = new Date();
    return toPage(
      await this.silences.list(projectId, state, limit, cursor),
      limit,
      (s) => toSilenceResponse(s, now),
      createdCursor,
    );
  }

  async get(projectId: ProjectId, silenceId: string): Promise<SilenceResponse> {
    const silence = await this.silences.find(projectId, silenceId);
    if (!silence) throw new NotFoundError('silence');
    return toSilenceResponse(silence);
  }

  /** Ends it now; expiring an expired silence is a no-op (200). */
  async expire(projectId: ProjectId, silenceId: string): Promise<SilenceResponse> {
    const silence = await this.silences.expire(projectId, silenceId);
    if (!silence) throw new NotFoundError('silence');
    return toSilenceResponse(silence);
  }
}
