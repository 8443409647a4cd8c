import { AppConfig } from '@app/config';
import {
  Injectable,
  Logger,
  OnApplicationShutdown,
  BeforeApplicationShutdown,
} from '@nestjs/common';
import { PeriodicTask } from '@app/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import { ApiKeyCache, ApiKeyPrincipal } from './api-key-cache';
import { keyFingerprint, parseApiKey } from './api-key.format';
import { ApiKeysRepository } from './repositories';

/** How often each replica asks PostgreSQL for keys revoked since its last look. */
export const REVOCATION_POLL_MS = 1000;
/**
 * A cached verification is trusted only while revocation polling is healthy (a poll
 * succeeded this recently) or the verification itself is this fresh. Both keep the
 * contract's "refused everywhere within 5 s" with a margin.
 */
export const TRUST_WINDOW_MS = 4000;
/** Each poll re-reads this much history, so a poll that raced a slow commit can't miss it. */
const REVOCATION_POLL_OVERLAP_MS = 10000;
const NEGATIVE_TTL_MS = 30000;

/**
 * Verifies `X-API-Key` values. bcrypt costs ~90 ms of CPU, so it runs at most once per key
 * per cache lifetime: successful verifications are cached in memory by a fingerprint of
 * the presented key. Revocation reaches every replica through a cheap indexed poll of
 * `api_keys.revoked_at` each second (independent of Redis), and the revoking replica drops
 * its own entries at once. `last_used_at` is buffered and written in batches.
 */
@Injectable()
export class ApiKeyAuthService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(ApiKeyAuthService.name);
  private readonly cache: ApiKeyCache;
  /** Keys refused lately (fingerprint → until when), so a wrong key costs one bcrypt. */
  private readonly negative = new LRUCache<string, number>({ max: 10000 });
  private readonly inflight = new Map<string, Promise<ApiKeyPrincipal | null>>();
  private readonly lastUsed = new Map<string, Date>();
  private readonly poll: PeriodicTask;
  private readonly flush: PeriodicTask;
  private started = false;
  private lastPollOkAt = 0;
  private pollSince: Date | null = null;
  private polling?: Promise<void>;

  constructor(
    private readonly keys: ApiKeysRepository,
    config: ConfigService<AppConfig, true>,
  ) {
    const auth = config.get('auth', { infer: true });
    this.cache = new ApiKeyCache(auth.keyCacheMaxEntries, auth.keyCacheTtlMs);
    // Both log their own failures.
    const quiet = { quiet: true };
    this.poll = new PeriodicTask(
      REVOCATION_POLL_MS,
      () => this.pollRevocations(),
      this.logger,
      '',
      quiet,
    );
    this.flush = new PeriodicTask(
      auth.lastUsedFlushMs,
      () => this.flushLastUsed(),
      this.logger,
      '',
      quiet,
    );
  }

  /** Resolves the key's principal, or null for anything that is not a live key. */
  async verify(presented: unknown): Promise<ApiKeyPrincipal | null> {
    const parsed = parseApiKey(presented);
    if (!parsed) return null; // malformed, empty, oversized: no database, no bcrypt
    this.startTimers();
    const fingerprint = keyFingerprint(presented as string);
    const now = Date.now();

    const cached = this.cache.get(fingerprint, now);
    if (cached) {
      if (this.trusted(cached.checkedAt, now) || (await this.recheck(parsed.prefix, cached))) {
        this.markUsed(cached.principal.keyId);
        return cached.principal;
      }
      this.cache.delete(fingerprint);
    }
    const refusedUntil = this.negative.get(fingerprint);
    if (refusedUntil !== undefined) {
      if (refusedUntil > now) return null;
      this.negative.delete(fingerprint);
    }

    // Concurrent first requests with the same key share one bcrypt.
    let pending = this.inflight.get(fingerprint);
    if (!pending) {
      pending = this.verifySlow(fingerprint, parsed.prefix, parsed.secret).finally(() =>
        this.inflight.delete(fingerprint),
      );
      this.inflight.set(fingerprint, pending);
    }
    const principal = await pending;
    if (principal) this.markUsed(principal.keyId);
    return principal;
  }

  /**
   * The principal of a key this replica verified and still caches, from memory alone: no
   * database, no bcrypt. Revocation is not re-checked, so this picks a rate-limit bucket
   * before {@link verify} runs; it authenticates nothing.
   */
  cachedPrincipal(presented: unknown): ApiKeyPrincipal | null {
    if (!parseApiKey(presented)) return null;
    return this.cache.get(keyFingerprint(presented as string), Date.now())?.principal ?? null;
  }

  /** Called by the revoking replica right after its UPDATE commits. */
  forget(keyId: string): void {
    this.cache.deleteKey(keyId);
  }

  private trusted(checkedAt: number, now: number): boolean {
    return now - this.lastPollOkAt < TRUST_WINDOW_MS || now - checkedAt < TRUST_WINDOW_MS;
  }

  /** Polling is unhealthy: confirm the key is still live with one indexed read, no bcrypt. */
  private async recheck(
    prefix: string,
    cached: { secretHash: string; checkedAt: number },
  ): Promise<boolean> {
    const checkedAt = Date.now();
    const row = await this.keys.findCredentialByPrefix(prefix);
    if (!row || row.revokedAt || row.secretHash !== cached.secretHash) return false;
    cached.checkedAt = checkedAt;
    return true;
  }

  private async verifySlow(
    fingerprint: string,
    prefix: string,
    secret: string,
  ): Promise<ApiKeyPrincipal | null> {
    const checkedAt = Date.now();
    const row = await this.keys.findCredentialByPrefix(prefix);
    if (!row || row.revokedAt || !(await bcrypt.compare(secret, row.secretHash))) {
      this.refuse(fingerprint);
      return null;
    }
    const principal: ApiKeyPrincipal = {
      keyId: row.id,
      projectId: row.projectId,
      scopes: row.scopes,
    };
    this.cache.set(fingerprint, principal, row.secretHash, checkedAt);
    return principal;
  }

  private refuse(fingerprint: string): void {
    this.negative.set(fingerprint, Date.now() + NEGATIVE_TTL_MS);
  }

  private markUsed(keyId: string): void {
    this.lastUsed.set(keyId, new Date());
  }

  /** On first use, so a process that never authenticates (the worker) never polls. */
  private startTimers(): void {
    if (this.started) return;
    this.started = true;
    this.poll.start();
    this.flush.start();
    void this.pollRevocations();
  }

  /** One poll at a time; exposed for tests through {@link pollNow}. */
  private pollRevocations(): Promise<void> {
    this.polling ??= this.doPoll().finally(() => (this.polling = undefined));
    return this.polling;
  }

  async pollNow(): Promise<void> {
    await this.pollRevocations();
  }

  private async doPoll(): Promise<void> {
    const startedAt = Date.now();
    try {
      // The database's clock decides what "since" means, so replica clock skew can't hide
      // a revocation; the overlap re-reads recent ones to catch late commits.
      const { ids, polledAt } = await this.keys.revokedSince(this.pollSince);
      for (const id of ids) this.cache.deleteKey(id);
      this.pollSince = new Date(polledAt.getTime() - REVOCATION_POLL_OVERLAP_MS);
      this.lastPollOkAt = startedAt;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'api key revocation poll failed');
    }
  }

  /** Writes buffered `last_used_at` values; a failed write keeps them for the next try. */
  async flushLastUsed(): Promise<void> {
    if (this.lastUsed.size === 0) return;
    const usages = [...this.lastUsed].map(([id, at]) => ({ id, at }));
    this.lastUsed.clear();
    try {
      await this.keys.touchMany(usages);
    } catch (err) {
      for (const u of usages) if (!this.lastUsed.has(u.id)) this.lastUsed.set(u.id, u.at);
      this.logger.warn({ err: (err as Error).message }, 'last_used_at flush failed');
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([this.poll.stop(), this.flush.stop()]);
    await this.polling;
    await this.flushLastUsed();
  }

  onApplicationShutdown(): void {
    this.cache.clear();
  }
}
