import { AppConfig } from '@app/config';
import { Logger, Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { parseKeyRing } from './secret-box';
import { WebhookSecretCodec } from './webhook-secrets';

/**
 * The codec with the key ring of WEBHOOK_SECRET_KEYS (a bad value stops the process at
 * boot with a message naming the entry). Without keys, one derived from ADMIN_TOKEN: fine
 * for development, but then ADMIN_TOKEN can't change without losing every secret, so
 * production says so at boot.
 */
export const webhookSecretCodecProvider: Provider = {
  provide: WebhookSecretCodec,
  inject: [ConfigService],
  useFactory: (config: ConfigService<AppConfig, true>) => {
    const ring = parseKeyRing(
      config.get('webhooks', { infer: true }).secretKeys,
      config.get('auth', { infer: true }).adminToken,
    );
    if (ring.derived && config.get('app', { infer: true }).env === 'production')
      new Logger('WebhookSecrets').warn(
        'WEBHOOK_SECRET_KEYS is not set: webhook secrets are encrypted with a key derived from ADMIN_TOKEN, so changing ADMIN_TOKEN would make them unreadable. Set WEBHOOK_SECRET_KEYS (see docs/operations.md).',
      );
    return new WebhookSecretCodec(ring);
  },
};
