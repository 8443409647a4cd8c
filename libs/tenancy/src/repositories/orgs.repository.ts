import { ConflictError } from '@app/common';
import { isUniqueViolation, pageByCreated } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { OrgEntity } from '../entities';

/**
 * Orgs sit above every tenant, so these methods take no tenant argument: a deliberate
 * exception, reachable only through admin routes.
 */
@Injectable()
export class OrgsRepository {
  constructor(@InjectRepository(OrgEntity) private readonly orgs: Repository<OrgEntity>) {}

  async create(name: string): Promise<OrgEntity> {
    try {
      return await this.orgs.save(this.orgs.create({ name }));
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError(`an org named "${name}" already exists`);
      throw err;
    }
  }

  findById(orgId: string): Promise<OrgEntity | null> {
    return this.orgs.findOneBy({ id: orgId });
  }

  /** Oldest first, keyset-paginated on (created_at, id). */
  list(limit: number, cursor?: string): Promise<OrgEntity[]> {
    return pageByCreated(this.orgs.createQueryBuilder('o'), limit, cursor);
  }
}
