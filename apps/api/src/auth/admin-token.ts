import { AppConfig } from '@app/config';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/** Checks `Authorization: Bearer <ADMIN_TOKEN>` in constant time (digests, not strings). */
@Injectable()
export class AdminToken {
  private readonly digest: Buffer;

  constructor(config: ConfigService<AppConfig, true>) {
    this.digest = sha256(config.get('auth', { infer: true }).adminToken);
  }

  matches(authorization: string | undefined): boolean {
    const match = /^Bearer (.{1,512})$/.exec(authorization ?? '');
    return match !== null && timingSafeEqual(sha256(match[1]), this.digest);
  }
}
