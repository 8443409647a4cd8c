import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com), pure: no Nest, no I/O.
 * The `standardwebhooks` package computes each signature.
 *
 * The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the
 * base64-decoded part of a `whsec_` secret; the header value is `v1,<base64 HMAC-SHA256>`,
 * and several signatures (old and new secret during a rotation) are space-separated, as
 * the spec allows.
 */
export const SECRET_PREFIX = 'whsec_';

/**
 * Not part of Standard Webhooks: the key ids of the secrets that signed, space-separated in
 * the order of the signatures in `webhook-signature`. A receiver that finds no signature
 * matching can tell a secret it doesn't have (an unknown key id) from a message changed
 * after signing (a key id it has).
 */
export const KEY_IDS_HEADER = 'webhook-key-ids';

/**
 * A secret's key id: the first 8 hex digits of SHA-256 of the secret as shown (`whsec_…`;
 * `echo -n "$SECRET" | sha256sum | cut -c1-8`). It names the secret and reveals nothing of
 * it (the secret is 32 random bytes).
 */
export function keyId(secret: string): string {
  const shown = secret.startsWith(SECRET_PREFIX) ? secret : SECRET_PREFIX + secret;
  return createHash('sha256').update(shown).digest('hex').slice(0, 8);
}

/** 32 random bytes (the spec asks for 24 to 64): `whsec_` + base64. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** `v1,<signature>` of one message under one secret. */
export function sign(
  secret: string,
  msgId: string,
  timestampSeconds: number,
  body: string,
): string {
  // The package also takes a secret without the prefix; ours always have it, so a value
  // without it (one still sealed, say) is a bug to report, not a key to sign with.
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('a webhook secret starts with whsec_');
  return new Webhook(secret).sign(msgId, new Date(timestampSeconds * 1000), body);
}

/** The `webhook-signature` header: one signature per active secret, space-separated. */
export function signatureHeader(
  secrets: string[],
  msgId: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => sign(s, msgId, timestampSeconds, body)).join(' ');
}

/**
 * Does any `v1` signature in `header` match under `secret`? Constant-time per candidate.
 * For our own tests and tools; subscribers should use a Standard Webhooks library, which
 * also checks the timestamp's age.
 */
export function verifySignature(
  secret: string,
  msgId: string,
  timestampSeconds: number,
  body: string,
  header: string,
): boolean {
  // Not Webhook.verify: it refuses a timestamp more than 5 minutes from now, and this
  // checks signatures of any age.
  const expected = Buffer.from(sign(secret, msgId, timestampSeconds, body));
  return header.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
