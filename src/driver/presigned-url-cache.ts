import { LRUCache } from 'lru-cache';

export interface PresignedUrl {
  url: string;
  expiresAt: Date;
}

interface Entry {
  pending?: Promise<PresignedUrl>;
  value?: PresignedUrl;
  /** When the value stops being handed out: half its lifetime or `maxAgeMs`, whichever comes first. */
  reuseUntil: number;
}

/**
 * Presigned GET URLs for pulls, reused while at least half their lifetime
 * remains and for at most `maxAgeMs`. Every 307 otherwise costs a round trip
 * to the hold and a signature; access is still checked by the registry on
 * every request, before it asks for a URL. Concurrent misses for one key share
 * one request to the hold.
 *
 * A blob deleted through another registry instance and pushed again is
 * stored under a new object. The registry keys its URLs by the blob row's
 * generation, which changes when that happens, so it never meets a URL for
 * the old object; for callers that pass none, the age cap bounds how long
 * such a URL answers 404.
 */
export class PresignedUrlCache {
  readonly #lru: LRUCache<string, Entry>;
  readonly #now: () => number;

  readonly #maxAgeMs: number;

  constructor(options: { maxEntries: number; maxAgeMs?: number; now?: () => number }) {
    this.#lru = new LRUCache<string, Entry>({ max: options.maxEntries });
    this.#maxAgeMs = options.maxAgeMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** `generation` is the caller's name for which life of the blob it means; a new one never meets an old URL. */
  static key(did: string, method: string, digest: string, generation?: number): string {
    return `${digest} ${method} ${did} ${generation ?? ''}`;
  }

  async get(key: string, issue: () => Promise<PresignedUrl>): Promise<PresignedUrl> {
    const entry = this.#lru.get(key);
    if (entry?.pending) return entry.pending;
    if (entry?.value && this.#now() < entry.reuseUntil) return entry.value;
    const issuedAt = this.#now();
    const pending = issue();
    const fresh: Entry = { pending, reuseUntil: 0 };
    this.#lru.set(key, fresh);
    try {
      const value = await pending;
      if (this.#lru.get(key) === fresh) {
        const halfLife = (value.expiresAt.getTime() - issuedAt) / 2;
        this.#lru.set(key, { value, reuseUntil: issuedAt + Math.min(halfLife, this.#maxAgeMs) });
      }
      return value;
    } catch (err) {
      if (this.#lru.get(key) === fresh) this.#lru.delete(key);
      throw err;
    }
  }

  /** The blob is gone (deleted or released): no URL for it may be handed out again. */
  forgetDigest(digest: string): void {
    for (const key of [...this.#lru.keys()]) {
      if (key.startsWith(`${digest} `)) this.#lru.delete(key);
    }
  }
}
