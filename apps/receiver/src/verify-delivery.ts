import { keyId } from '@app/webhooks/signature';
import { timingSafeEqual } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { TIMESTAMP_TOLERANCE_SECONDS } from './receiver.constants';

/**
 * The three Standard Webhooks headers, as received (any may be missing), and our sender's
 * `webhook-key-ids` (which secrets signed: see `keyId` in libs/webhooks).
 */
export interface WebhookHeaders {
  'webhook-id'?: string;
  'webhook-timestamp'?: string;
  'webhook-signature'?: string;
  'webhook-key-ids'?: string;
}

export type Verification =
  | { result: 'verified'; secret_index: number }
  /** Signed by secret #secret_index (its key id says so), yet the signature doesn't match. */
  | { result: 'invalid'; reason: 'signature mismatch'; secret_index: number }
  /** Signed by secrets this receiver doesn't have (their key ids). */
  | { result: 'invalid'; reason: 'unknown secret'; key_ids: string[] }
  | { result: 'invalid'; reason: string }
  | { result: 'no_secret'; reason: 'no secret configured' };

/** Why no secret verified a delivery that names no key ids: either cause is possible. */
export const NO_MATCH = 'no secret matches (unknown secret, or the message changed after signing)';

export interface ReceivedMessage {
  headers: WebhookHeaders;
  rawBody: Buffer;
  receivedAt: Date;
}

const REQUIRED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/**
 * Checks a delivery against each secret in turn with the `standardwebhooks` package and
 * says which secret signed it, or why none did. When none did, the `webhook-key-ids`
 * header tells the two causes apart: a key id of one of our secrets means that secret
 * signed and the message changed since (`signature mismatch`); otherwise the signing
 * secret is one we don't have (`unknown secret`). Without the header (another sender),
 * the verdict names both causes.
 *
 * The timestamp is judged against the time the delivery was *received*, so a delivery
 * stored an hour ago and re-verified now (after a secret was added) gets the verdict it
 * would have got on arrival. At receipt the package's own check (against now) agrees; on
 * re-verification it refuses a stored message as too old, and then the signature is
 * compared with the package's `sign()` for that message's id and timestamp instead.
 */
export function verifyDelivery(secrets: readonly string[], message: ReceivedMessage): Verification {
  if (secrets.length === 0) return { result: 'no_secret', reason: 'no secret configured' };

  const { headers, rawBody, receivedAt } = message;
  const missing = REQUIRED_HEADERS.filter((name) => !headers[name]);
  if (missing.length > 0) return invalid(`missing headers: ${missing.join(', ')}`);

  // parseInt, as the package does: the signed string carries this number, not the header.
  const timestamp = parseInt(headers['webhook-timestamp']!, 10);
  if (Number.isNaN(timestamp)) return invalid('bad webhook-timestamp header');
  const received = Math.floor(receivedAt.getTime() / 1000);
  if (received - timestamp > TIMESTAMP_TOLERANCE_SECONDS) return invalid('timestamp too old');
  if (timestamp - received > TIMESTAMP_TOLERANCE_SECONDS) return invalid('timestamp too new');

  const signed = { ...headers } as Record<string, string>;
  for (const [index, secret] of secrets.entries()) {
    const webhook = new Webhook(secret);
    try {
      webhook.verify(rawBody, signed, { jsonParse: false });
      return { result: 'verified', secret_index: index };
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      if (/timestamp too (old|new)/i.test(err.message)) {
        // Fresh when received, stale now: a re-verification (see above).
        if (signatureMatches(webhook, headers, timestamp, rawBody)) {
          return { result: 'verified', secret_index: index };
        }
      }
      // "No matching signature found": try the next secret.
    }
  }
  return noMatch(secrets, headers['webhook-key-ids']);
}

/** No secret verified the message: which of ours signed it, if the sender says. */
function noMatch(secrets: readonly string[], keyIdsHeader: string | undefined): Verification {
  const signedBy = (keyIdsHeader ?? '').split(/\s+/).filter((id) => /^[0-9a-f]{8}$/.test(id));
  if (signedBy.length === 0) return invalid(NO_MATCH);
  const index = secrets.findIndex((secret) => signedBy.includes(keyId(secret)));
  if (index >= 0) return { result: 'invalid', reason: 'signature mismatch', secret_index: index };
  return { result: 'invalid', reason: 'unknown secret', key_ids: signedBy };
}

/** One of the header's space-separated `v1,<base64>` entries equals the package's signature. */
function signatureMatches(
  webhook: Webhook,
  headers: WebhookHeaders,
  timestamp: number,
  rawBody: Buffer,
): boolean {
  const expected = Buffer.from(
    webhook.sign(headers['webhook-id']!, new Date(timestamp * 1000), rawBody),
  );
  return headers['webhook-signature']!.split(' ').some((entry) => {
    const candidate = Buffer.from(entry);
    return candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
}

function invalid(reason: string): Verification {
  return { result: 'invalid', reason };
}
