import type { ApiKeyScope } from './api-key.format';

export interface ApiKeyPrincipal {
  keyId: string;
  projectId: string;
  scopes: ApiKeyScope[];
}

interface Entry {
  principal: ApiKeyPrincipal;
  /** The bcrypt hash the key was verified against; a re-check compares it, no bcrypt. */
  secretHash: string;
  /** When the database said the key was valid (not when bcrypt finished). */
  checkedAt: number;
}

/**
 * Bounded, age-limited map of successful verifications, keyed by a fingerprint of the
 * presented key (never the key). Pure: time comes in as arguments. Insertion order is
 * recency order (a hit re-inserts), so eviction drops the least recently used entry.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(fingerprint: string, now: number): Entry | undefined {
    const entry = this.entries.get(fingerprint);
    if (!entry) return undefined;
    if (now - entry.checkedAt >= this.ttlMs) {
      this.entries.delete(fingerprint);
      return undefined;
    }
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, entry);
    return entry;
  }

  set(
    fingerprint: string,
    principal: ApiKeyPrincipal,
    secretHash: string,
    checkedAt: number,
  ): void {
    if (this.maxEntries <= 0 || this.ttlMs <= 0) return;
    this.entries.delete(fingerprint);
    this.entries.set(fingerprint, { principal, secretHash, checkedAt });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  delete(fingerprint: string): void {
    this.entries.delete(fingerprint);
  }

  /** Drops every entry of a key (revocation). */
  deleteKey(keyId: string): number {
    let removed = 0;
    for (const [fp, entry] of this.entries) {
      if (entry.principal.keyId === keyId) {
        this.entries.delete(fp);
        removed++;
      }
    }
    return removed;
  }

  clear(): void {
    this.entries.clear();
  }
}
