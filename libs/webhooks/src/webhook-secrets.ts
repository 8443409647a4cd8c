import type { DataSource } from 'typeorm';
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
  dataSource: DataSource,
  codec: WebhookSecretCodec,
): Promise<{ resealed: number; unreadable: number }> {
  let resealed = 0;
  let unreadable = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows: Array<{ id: string; secret: string; previous_secret: string | null }> =
      await dataSource.query(
        `SELECT id, secret, previous_secret FROM webhooks
          WHERE id > $1 AND (secret NOT LIKE 'v1:%' OR split_part(secret, ':', 2) <> $2
                OR previous_secret NOT LIKE 'v1:%' OR split_part(previous_secret, ':', 2) <> $2)
          ORDER BY id LIMIT $3`,
        [after, codec.ring.current.id, BATCH],
      );
    if (rows.length === 0) return { resealed, unreadable };
    for (const row of rows) {
      after = row.id;
      let secret: string;
      let previous: string | null;
      try {
        secret = codec.needsReseal(row.secret)
          ? codec.seal(row.id, codec.open(row.id, row.secret))
          : row.secret;
        previous =
          row.previous_secret !== null && codec.needsReseal(row.previous_secret)
            ? codec.seal(row.id, codec.open(row.id, row.previous_secret))
            : row.previous_secret;
      } catch (err) {
        if (!(err instanceof SecretBoxError)) throw err;
        unreadable++;
        continue;
      }
      const [, count] = (await dataSource.query(
        `UPDATE webhooks SET secret = $2, previous_secret = $3
          WHERE id = $1 AND secret = $4 AND previous_secret IS NOT DISTINCT FROM $5`,
        [row.id, secret, previous, row.secret, row.previous_secret],
      )) as [unknown, number];
      resealed += count;
    }
  }
}
