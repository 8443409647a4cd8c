import { pageByCreated } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Repository } from 'typeorm';
import type { ApiKeyScope } from '../api-key.format';
import { ApiKeyEntity } from '../entities';

export interface ApiKeyCredential {
  id: string;
  projectId: string;
  scopes: ApiKeyScope[];
  secretHash: string;
  revokedAt: Date | null;
}

@Injectable()
export class ApiKeysRepository {
  constructor(@InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>) {}

  create(
    projectId: string,
    values: { name: string; prefix: string; secretHash: string; scopes: ApiKeyScope[] },
  ): Promise<ApiKeyEntity> {
    return this.keys.save(this.keys.create({ projectId, ...values }));
  }

  list(projectId: string, limit: number, cursor?: string): Promise<ApiKeyEntity[]> {
    const qb = this.keys.createQueryBuilder('k').where('k.project_id = :projectId', { projectId });
    return pageByCreated(qb, limit, cursor);
  }

  findInProject(projectId: string, keyId: string): Promise<ApiKeyEntity | null> {
    return this.keys.findOneBy({ projectId, id: keyId });
  }

  /** Marks the key revoked; returns false when it does not exist in the project. */
  async revoke(projectId: string, keyId: string): Promise<boolean> {
    const key = await this.findInProject(projectId, keyId);
    if (!key) return false;
    await this.keys.update(
      { id: keyId, projectId, revokedAt: IsNull() },
      { revokedAt: () => 'now()' },
    );
    return true;
  }

  /**
   * Authentication lookup by the public prefix. The credential's project is what the
   * key grants, so this is the one lookup without a tenant argument.
   */
  async findCredentialByPrefix(prefix: string): Promise<ApiKeyCredential | null> {
    const rows: ApiKeyCredential[] = await this.keys.query(
      `SELECT id, project_id AS "projectId", scopes, secret_hash AS "secretHash", revoked_at AS "revokedAt"
         FROM api_keys WHERE prefix = $1`,
      [prefix],
    );
    return rows[0] ?? null;
  }

  /**
   * Writes buffered `last_used_at` values in one statement. GREATEST keeps the newest
   * value when several api replicas flush the same key.
   */
  async touchMany(usages: Array<{ id: string; at: Date }>): Promise<void> {
    if (usages.length === 0) return;
    await this.keys.query(
      `UPDATE api_keys k
          SET last_used_at = GREATEST(COALESCE(k.last_used_at, '-infinity'), u.at)
         FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
        WHERE k.id = u.id`,
      [usages.map((u) => u.id), usages.map((u) => u.at.toISOString())],
    );
  }
}
