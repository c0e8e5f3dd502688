import { LRUCache } from 'lru-cache';

export interface PresignedUrl {
  url: string;
  expiresAt: Date;
}

interface Entry {
  pending?: Promise<PresignedUrl>;
  value?: PresignedUrl;
  /** When the value stops being handed out: half its lifetime. */
  reuseUntil: number;
}

/**
 * Presigned GET URLs for pulls, reused while at least half their lifetime
 * remains. Every 307 otherwise costs a round trip to the hold and a signature;
 * access is still checked by the registry on every request, before it asks
 * for a URL. Concurrent misses for one key share one request to the hold.
 */
export class PresignedUrlCache {
  readonly #lru: LRUCache<string, Entry>;
  readonly #now: () => number;

  constructor(options: { maxEntries: number; now?: () => number }) {
    this.#lru = new LRUCache<string, Entry>({ max: options.maxEntries });
    this.#now = options.now ?? Date.now;
  }

  static key(did: string, method: string, digest: string): string {
    return `${digest} ${method} ${did}`;
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
        this.#lru.set(key, { value, reuseUntil: issuedAt + (value.expiresAt.getTime() - issuedAt) / 2 });
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
