import { ConflictError, ProjectId } from '@app/common';
import { assertUnderQuota, isUniqueViolation, pageByCreated, saveUnderQuota } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { DeviceEntity } from '../entities';

@Injectable()
export class DevicesRepository {
  constructor(@InjectRepository(DeviceEntity) private readonly devices: Repository<DeviceEntity>) {}

  /** Creates a device; 409 when its external id is taken, 422 past the project's device quota. */
  async create(
    projectId: ProjectId,
    values: { externalId: string; name: string | null; tags: string[] },
    quota: number,
  ): Promise<DeviceEntity> {
    try {
      return await saveUnderQuota(
        this.devices,
        { what: 'devices', projectId, limit: quota },
        { projectId, ...values },
      );
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError(`a device with external_id "${values.externalId}" already exists`);
      }
      throw err;
    }
  }

  /**
   * Registers a device on first telemetry; a racing registration of the same id wins
   * harmlessly. 422 past the project's device quota (a device registered meanwhile by the
   * race counts as found, not as one more).
   */
  async register(projectId: ProjectId, externalId: string, quota: number): Promise<DeviceEntity> {
    await this.devices.manager.transaction(async (em) => {
      const repo = em.getRepository(DeviceEntity);
      if (await repo.existsBy({ projectId, externalId })) return;
      await assertUnderQuota(em, {
        what: 'devices',
        projectId,
        limit: quota,
        entity: DeviceEntity,
        // A racing registration of this very device, committed while we waited for the
        // quota lock, is the device we want, not one too many.
        unless: () => repo.existsBy({ projectId, externalId }),
      });
      await repo
        .createQueryBuilder()
        .insert()
        .values({ projectId, externalId, name: null, tags: [] })
        .orIgnore()
        .execute();
    });
    const device = await this.findByExternalId(projectId, externalId);
    if (!device) throw new Error(`device ${externalId} vanished after registration`);
    return device;
  }

  findById(projectId: ProjectId, deviceId: string): Promise<DeviceEntity | null> {
    return this.devices.findOneBy({ projectId, id: deviceId });
  }

  findByExternalId(projectId: ProjectId, externalId: string): Promise<DeviceEntity | null> {
    return this.devices.findOneBy({ projectId, externalId });
  }

  async update(
    projectId: ProjectId,
    deviceId: string,
    values: { name?: string | null; tags?: string[] },
  ): Promise<DeviceEntity | null> {
    if (Object.keys(values).length > 0) {
      await this.devices.update({ projectId, id: deviceId }, values);
    }
    return this.findById(projectId, deviceId);
  }

  /** The ids of every device of the project (at most its device quota). */
  async idsOf(projectId: ProjectId): Promise<string[]> {
    const rows = await this.devices.find({ select: { id: true }, where: { projectId } });
    return rows.map((d) => d.id);
  }

  /**
   * Up to `limit` devices of the project, oldest first: those of `ids` (unknown ids are
   * left out), else those with `tag`, else all.
   */
  select(
    projectId: ProjectId,
    which: { ids?: string[]; tag?: string },
    limit: number,
  ): Promise<DeviceEntity[]> {
    const qb = this.devices
      .createQueryBuilder('d')
      .where('d.project_id = :projectId', { projectId });
    if (which.ids !== undefined) qb.andWhere('d.id IN (:...ids)', { ids: which.ids });
    else if (which.tag !== undefined)
      qb.andWhere('d.tags @> ARRAY[:tag]::text[]', { tag: which.tag });
    return qb.orderBy('d.created_at').addOrderBy('d.id').limit(limit).getMany();
  }

  /**
   * Oldest first, keyset-paginated on (created_at, id); `tag` uses the GIN index,
   * `externalId` (exact) the unique one.
   */
  list(
    projectId: ProjectId,
    limit: number,
    opts: { tag?: string; externalId?: string; cursor?: string },
  ): Promise<DeviceEntity[]> {
    const qb = this.devices
      .createQueryBuilder('d')
      .where('d.project_id = :projectId', { projectId });
    if (opts.tag !== undefined) qb.andWhere('d.tags @> ARRAY[:tag]::text[]', { tag: opts.tag });
    if (opts.externalId !== undefined)
      qb.andWhere('d.external_id = :externalId', { externalId: opts.externalId });
    return pageByCreated(qb, limit, opts.cursor);
  }
}
