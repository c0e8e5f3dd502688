import type { Digest } from '../../core/digest.ts';
import { storageKey } from '../keys.ts';
import { StorageError, type StorageBackend } from '../backends/types.ts';

/**
 * The lease a deletion of a blob holds: an object at
 * `holdfast/deleting/<alg>/<hex>`, created only if absent, so at most one
 * deletion of a digest runs at a time across every hold process. `/move` and
 * `/claim` wait while it is there (see docs/GC.md for why that makes release
 * against move safe across registries). A lease whose holder died expires
 * after `leaseMs`; whoever finds it expired may take it over, with a write
 * conditioned on the ETag it read, and finish or undo the abandoned work.
 */
export interface DeletionLease {
  /**
   * The bytes key of the blob an abandoned deletion was removing, when this
   * lease was taken over from it: they may have lost their reference.
   */
  readonly abandonedTarget?: string;
  /**
   * True while enough of the lease is left to start deleting: a third of it.
   * One storage call (bounded by the backend's request timeout and retries)
   * must finish within the other two thirds.
   */
  canDelete(): boolean;
  /** Removes the lease unless it has expired (a taker may own the key by then). Safe to call twice. */
  end(): Promise<void>;
}

export type LeaseState = 'none' | 'live' | 'expired';

interface LeaseRecord {
  readonly expires_at: string;
  /** The bytes key the blob's reference named when the deletion began. */
  readonly target?: string;
}

export interface DeletionLeasesOptions {
  backend: StorageBackend;
  prefix: string;
  leaseMs: number;
  now: () => Date;
}

export class DeletionLeases {
  readonly #backend: StorageBackend;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #now: () => Date;
  /**
   * Digests this process holds a lease for, and until when: stands in for the
   * create-only write where a provider has none.
   */
  readonly #held = new Map<string, number>();

  constructor(options: DeletionLeasesOptions) {
    this.#backend = options.backend;
    this.#prefix = options.prefix;
    this.#leaseMs = options.leaseMs;
    this.#now = options.now;
  }

  /** Takes the lease for `digest`, or resolves undefined while another deletion holds it. */
  async acquire(digest: Digest, target?: string): Promise<DeletionLease | undefined> {
    const now = this.#now().getTime();
    if ((this.#held.get(digest.value) ?? 0) > now) return undefined;
    this.#held.set(digest.value, now + this.#leaseMs);
    try {
      const lease = await this.#create(digest, target);
      if (!lease) this.#held.delete(digest.value);
      return lease;
    } catch (err) {
      this.#held.delete(digest.value);
      throw err;
    }
  }

  async state(digest: Digest): Promise<LeaseState> {
    const object = await this.#backend.getSmall(this.#key(digest));
    if (!object) return 'none';
    return this.#expired(parseRecord(object.body)) ? 'expired' : 'live';
  }

  async #create(digest: Digest, target: string | undefined): Promise<DeletionLease | undefined> {
    const key = this.#key(digest);
    const started = this.#now().getTime();
    const record: LeaseRecord = { expires_at: new Date(started + this.#leaseMs).toISOString(), ...(target ? { target } : {}) };
    const body = Buffer.from(JSON.stringify(record));
    if (await this.#write(key, body, { ifNoneMatch: '*' })) return this.#lease(digest, started);
    const current = await this.#backend.getSmall(key);
    if (!current) return (await this.#write(key, body, { ifNoneMatch: '*' })) ? this.#lease(digest, started) : undefined;
    const previous = parseRecord(current.body);
    if (!this.#expired(previous)) return undefined;
    if (!(await this.#write(key, body, { ifMatch: current.etag }))) return undefined;
    return this.#lease(digest, started, previous.target);
  }

  /** False when the condition failed: someone else wrote first. */
  async #write(key: string, body: Uint8Array, condition: { ifMatch?: string; ifNoneMatch?: '*' }): Promise<boolean> {
    try {
      await this.#backend.putSmall(key, body, condition);
      return true;
    } catch (err) {
      if (err instanceof StorageError && err.code === 'PRECONDITION_FAILED') return false;
      throw err;
    }
  }

  #lease(digest: Digest, started: number, abandonedTarget?: string): DeletionLease {
    let ended = false;
    return {
      ...(abandonedTarget ? { abandonedTarget } : {}),
      canDelete: () => this.#now().getTime() - started < this.#leaseMs / 3,
      end: async () => {
        if (ended) return;
        ended = true;
        if (this.#now().getTime() - started >= this.#leaseMs) return;
        this.#held.delete(digest.value);
        await this.#backend.delete([this.#key(digest)]);
      },
    };
  }

  #expired(record: LeaseRecord): boolean {
    const expires = Date.parse(record.expires_at);
    return !Number.isFinite(expires) || expires <= this.#now().getTime();
  }

  #key(digest: Digest): string {
    return storageKey({ kind: 'blob-deleting', digest }, this.#prefix);
  }
}

/** A lease record that cannot be read counts as expired, so it never blocks a digest for good. */
function parseRecord(body: Uint8Array): LeaseRecord {
  try {
    const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as Partial<LeaseRecord>;
    return { expires_at: typeof parsed.expires_at === 'string' ? parsed.expires_at : '', ...(typeof parsed.target === 'string' ? { target: parsed.target } : {}) };
  } catch {
    return { expires_at: '' };
  }
}
