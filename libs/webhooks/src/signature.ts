import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signing (https://www.standardwebhooks.com), pure: no Nest, no I/O.
 *
 * The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the
 * base64-decoded part of a `whsec_` secret; the header value is `v1,<base64 HMAC-SHA256>`,
 * and several signatures (old and new secret during a rotation) are space-separated, as
 * the spec allows. Tests check this module against the `standardwebhooks` package.
 */
export const SECRET_PREFIX = 'whsec_';

/** 32 random bytes (the spec asks for 24 to 64): `whsec_` + base64. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('a webhook secret starts with whsec_');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

/** `v1,<signature>` of one message under one secret. */
export function sign(
  secret: string,
  msgId: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac('sha256', secretKey(secret))
    .update(`${msgId}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
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
  const expected = Buffer.from(sign(secret, msgId, timestampSeconds, body));
  return header.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
