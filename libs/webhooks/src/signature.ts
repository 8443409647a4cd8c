import { randomBytes, timingSafeEqual } from 'node:crypto';
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
