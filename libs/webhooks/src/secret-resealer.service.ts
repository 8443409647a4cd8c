import { WorkerRoles } from '@app/config';
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DeliveryLedgerRepository } from './delivery-ledger.repository';
import { resealWebhookSecrets, WebhookSecretCodec } from './webhook-secrets';

/**
 * At worker boot, seals webhook secrets still stored in plain text (rows written before
 * encryption at rest) and re-seals those under an older key (after WEBHOOK_SECRET_KEYS got
 * a new first key). In the background: a database that is down at boot only delays it to
 * the next boot. Not in `migrate`, which runs before a roll-out: workers of the previous
 * version, still running then, can't read a sealed secret.
 */
@Injectable()
export class SecretResealer implements OnApplicationBootstrap {
  private readonly logger = new Logger(SecretResealer.name);
  done?: Promise<void>;

  constructor(
    private readonly ledger: DeliveryLedgerRepository,
    private readonly codec: WebhookSecretCodec,
    private readonly roles: WorkerRoles,
  ) {}

  /** At the boot of a process that delivers webhooks (role `deliver`). */
  onApplicationBootstrap(): void {
    if (this.roles.runs('deliver', 'secret sealing')) this.done = this.run();
  }

  private async run(): Promise<void> {
    try {
      const { resealed, unreadable } = await resealWebhookSecrets(this.ledger, this.codec);
      if (resealed > 0)
        this.logger.log({ resealed, keyId: this.codec.ring.current.id }, 'webhook secrets sealed');
      if (unreadable > 0)
        this.logger.error(
          { unreadable },
          'webhook secrets sealed with a key missing from WEBHOOK_SECRET_KEYS: their deliveries fail until it is restored',
        );
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'webhook secrets not resealed; next boot');
    }
  }
}
