import type { DeliveryLedgerRepository } from './delivery-ledger.repository';
import { isSealed, KeyRing, open, seal, sealedWithOtherKey, SecretBoxError } from './secret-box';

/**
 * Webhook signing secrets as stored: sealed with the key ring (AES-256-GCM, the webhook id
 * as associated data, so a value copied onto another row does not open there). Rows
 * written before encryption hold the plain `whsec_…` value until {@link resealWebhookSecrets}
 * has run; reading tolerates both.
 */
export class WebhookSecretCodec {
  constructor(readonly ring: KeyRing) {}

  seal(webhookId: string, secret: string): string {
    return seal(this.ring, secret, webhookId);
  }

  /** The plain secret of a stored value; throws SecretBoxError naming the missing key. */
  open(webhookId: string, stored: string): string {
    return isSealed(stored) ? open(this.ring, stored, webhookId) : stored;
  }

  /**
   * The stored value sealed with the current key: the value itself when it already is.
   * Throws SecretBoxError when it can't be opened.
   */
  reseal(webhookId: string, stored: string): string {
    return this.needsReseal(stored) ? this.seal(webhookId, this.open(webhookId, stored)) : stored;
  }

  /** A stored value that is plain, or sealed under a key other than the current one. */
  needsReseal(stored: string | null): boolean {
    if (stored === null) return false;
    if (!isSealed(stored)) return true;
    return sealedWithOtherKey(this.ring, stored);
  }
}

const BATCH = 500;

/**
 * The data migration of webhook secrets: every plain one is sealed, every one sealed with
 * a key that is no longer the ring's first is sealed again with it (key rotation: put the
 * new key first in WEBHOOK_SECRET_KEYS, keep the old one after it until this has run).
 * Safe to run from several processes at once and again and again: a row is written only
 * if it still holds what was read. Returns how many rows were written and how many
 * could not be opened (a key missing from the ring; they are left as they are).
 */
export async function resealWebhookSecrets(
  ledger: DeliveryLedgerRepository,
  codec: WebhookSecretCodec,
): Promise<{ resealed: number; unreadable: number }> {
  let resealed = 0;
  let unreadable = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await ledger.secretsToReseal(after, codec.ring.current.id, BATCH);
    if (rows.length === 0) return { resealed, unreadable };
    for (const row of rows) {
      after = row.webhookId;
      let next: { secret: string; previousSecret: string | null };
      try {
        next = {
          secret: codec.reseal(row.webhookId, row.secret),
          previousSecret:
            row.previousSecret === null ? null : codec.reseal(row.webhookId, row.previousSecret),
        };
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        unreadable++;
        continue;
      }
      if (await ledger.replaceSecrets(row, next)) resealed++;
    }
  }
}
