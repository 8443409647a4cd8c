import { ProjectId } from '@app/common';
import { pageByCreated } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Repository } from 'typeorm';
import type { ApiKeyScope } from '../api-key.format';
import { ApiKeyEntity } from '../entities';

export interface ApiKeyCredential {
  id: string;
  projectId: ProjectId;
  scopes: ApiKeyScope[];
  secretHash: string;
  revokedAt: Date | null;
}

@Injectable()
export class ApiKeysRepository {
  constructor(@InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>) {}

  create(
    projectId: ProjectId,
    values: { name: string; prefix: string; secretHash: string; scopes: ApiKeyScope[] },
  ): Promise<ApiKeyEntity> {
    return this.keys.save(this.keys.create({ projectId, ...values }));
  }

  list(projectId: ProjectId, limit: number, cursor?: string): Promise<ApiKeyEntity[]> {
    const qb = this.keys.createQueryBuilder('k').where('k.project_id = :projectId', { projectId });
    return pageByCreated(qb, limit, cursor);
  }

  findInProject(projectId: ProjectId, keyId: string): Promise<ApiKeyEntity | null> {
    return this.keys.findOneBy({ projectId, id: keyId });
  }

  /** Marks the key revoked; returns false when it does not exist in the project. */
  async revoke(projectId: ProjectId, keyId: string): Promise<boolean> {
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
   * Keys revoked since `since` (by the database's clock, so replica clock skew can't hide
   * a revocation; the first poll looks back an hour), and the database's time of the read.
   */
  async revokedSince(since: Date | null): Promise<{ ids: string[]; polledAt: Date }> {
    const rows: Array<{ id: string | null; polled_at: Date }> = await this.keys.query(
      `SELECT k.id, now() AS polled_at
         FROM (SELECT 1) one
         LEFT JOIN api_keys k ON k.revoked_at >= COALESCE($1::timestamptz, now() - interval '1 hour')`,
      [since?.toISOString() ?? null],
    );
    return {
      ids: rows.flatMap((r) => (r.id ? [r.id] : [])),
      polledAt: rows[0].polled_at,
    };
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
