import { createHash, randomBytes } from 'node:crypto';

/**
 * API key format, pure (no I/O): `tpk_<12 base32 chars>.<43 base64url chars>`.
 * The prefix is public and indexed; the secret is 32 random bytes, stored only as a
 * bcrypt hash. Changing this format invalidates every issued key's parser: don't.
 */
export const API_KEY_SCOPES = ['ingest', 'read', 'manage'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

const PREFIX_RE = /^tpk_[a-z2-7]{12}$/;
const KEY_RE = /^(tpk_[a-z2-7]{12})\.([A-Za-z0-9_-]{43})$/;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Longest string {@link parseApiKey} even looks at: cheap refusal of oversized headers. */
export const MAX_API_KEY_LENGTH = 64;

export interface GeneratedApiKey {
  prefix: string;
  secret: string;
  key: string;
}

export function generateApiKey(): GeneratedApiKey {
  const bytes = randomBytes(12);
  const prefix = 'tpk_' + Array.from(bytes, (b) => BASE32[b & 31]).join('');
  const secret = randomBytes(32).toString('base64url');
  return { prefix, secret, key: `${prefix}.${secret}` };
}

export function parseApiKey(presented: unknown): { prefix: string; secret: string } | null {
  if (typeof presented !== 'string' || presented.length > MAX_API_KEY_LENGTH) return null;
  const match = KEY_RE.exec(presented);
  return match ? { prefix: match[1], secret: match[2] } : null;
}

export function isApiKeyPrefix(value: string): boolean {
  return PREFIX_RE.test(value);
}

/**
 * Fast one-way hash of a presented key, used as the verification-cache key so that the
 * raw key is never held in a long-lived structure.
 */
export function keyFingerprint(presented: string): string {
  return createHash('sha256').update(presented).digest('base64url');
}
