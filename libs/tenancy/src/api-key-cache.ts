import type { ProjectId } from '@app/common';
import { LRUCache } from 'lru-cache';
import type { ApiKeyScope } from './api-key.format';

export interface ApiKeyPrincipal {
  keyId: string;
  projectId: ProjectId;
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
 * presented key (never the key): lru-cache bounds it and drops the least recently used
 * entry; the age is ours (time comes in as arguments, and a re-check that confirms a key
 * renews `checkedAt` in place), so the cache stays pure.
 */
export class ApiKeyCache {
  private readonly entries?: LRUCache<string, Entry>;

  constructor(
    maxEntries: number,
    private readonly ttlMs: number,
  ) {
    if (maxEntries > 0 && ttlMs > 0) this.entries = new LRUCache({ max: maxEntries });
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }

  get(fingerprint: string, now: number): Entry | undefined {
    const entry = this.entries?.get(fingerprint);
    if (!entry) return undefined;
    if (now - entry.checkedAt >= this.ttlMs) {
      this.entries!.delete(fingerprint);
      return undefined;
    }
    return entry;
  }

  set(
    fingerprint: string,
    principal: ApiKeyPrincipal,
    secretHash: string,
    checkedAt: number,
  ): void {
    this.entries?.set(fingerprint, { principal, secretHash, checkedAt });
  }

  delete(fingerprint: string): void {
    this.entries?.delete(fingerprint);
  }

  /** Drops every entry of a key (revocation). */
  deleteKey(keyId: string): number {
    if (!this.entries) return 0;
    const gone = [...this.entries.entries()].filter(([, e]) => e.principal.keyId === keyId);
    for (const [fp] of gone) this.entries.delete(fp);
    return gone.length;
  }

  clear(): void {
    this.entries?.clear();
  }
}
