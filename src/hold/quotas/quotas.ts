import { formatBytes } from '../../core/byte-size.ts';
import { parseDigest, type Digest } from '../../core/digest.ts';
import { KeyedMutex } from '../../core/keyed-mutex.ts';
import { HoldError } from '../errors.ts';
import { didId, storageKey } from '../keys.ts';
import { StorageError, type StorageBackend } from '../backends/types.ts';

export interface QuotaSettings {
  /** The hold's identity, as a person reads it in a refusal. */
  hold: string;
  owner: string;
  tiers: Readonly<Record<string, number>>;
  defaultTier?: string;
  /** Crew members with a tier of their own. */
  crewTiers: ReadonlyMap<string, string>;
}

export interface QuotaLimit {
  tier: string;
  bytes: number;
}

/** The reads of a charge, started early (`Quotas.prepare`). */
export interface PreparedCharge {
  did: string;
  limit: QuotaLimit;
  key: string;
  reads: Promise<[unknown, { bytes: number; etag?: string }]>;
}

/** Where a push was refused: its start, a part URL, or the charge at publish or mount. */
export type QuotaPhase = 'start' | 'upload' | 'charge';

export interface QuotaUsage {
  did: string;
  bytes: number;
  limit?: QuotaLimit;
}

/** How long a soft check (an upload's start, its next part) trusts a usage it read. */
const USAGE_CACHE_MS = 5_000;
/** Compare-and-swap attempts on one DID's usage before answering 503. */
const MAX_SWAPS = 50;

/**
 * Storage limits per DID (docs/POLICIES.md). A DID is charged once for each
 * blob it publishes or claims (a mount): a charge marker per DID and digest,
 * created only if absent, and the DID's total, updated by compare-and-swap,
 * both in the bucket, so every hold process and every registry sharing the
 * hold sees one count. The total is raised before the marker is written and
 * lowered again if another charge of the same blob won, so a crash between
 * the two over-counts (the DID pays for a blob once more) rather than lets
 * bytes in free; `holdfast quota --check` finds and fixes such drift. All of a
 * blob's charges go when its bytes are deleted.
 */
export class Quotas {
  readonly #backend: StorageBackend;
  readonly #prefix: string;
  readonly #settings: QuotaSettings;
  readonly #locks = new KeyedMutex();
  readonly #cached = new Map<string, { bytes: number; at: number }>();
  readonly #onRefusal: (phase: QuotaPhase) => void;
  readonly #inFlight = new Map<string, Promise<boolean>>();

  constructor(options: { backend: StorageBackend; prefix: string; settings: QuotaSettings; onRefusal?: (phase: QuotaPhase) => void }) {
    this.#backend = options.backend;
    this.#prefix = options.prefix;
    this.#settings = options.settings;
    this.#onRefusal = options.onRefusal ?? (() => {});
  }

  /** The DID's limit; undefined when it has none (the owner, or no tier applies). */
  limitOf(did: string): QuotaLimit | undefined {
    if (did === this.#settings.owner) return undefined;
    const tier = this.#settings.crewTiers.get(did) ?? this.#settings.defaultTier;
    const bytes = tier === undefined ? undefined : this.#settings.tiers[tier];
    return tier === undefined || bytes === undefined ? undefined : { tier, bytes };
  }

  async usage(did: string): Promise<number> {
    return (await this.#readUsage(did)).bytes;
  }

  /**
   * Refuses when the DID's usage plus `adding` passes its limit, or when it is
   * already at it (`adding` 0: a new upload). Trusts a usage read in the last
   * few seconds: the exact check is the charge at publish.
   */
  async assertRoom(did: string, adding: number): Promise<void> {
    const standing = await this.#standing(did);
    if (standing) this.#refuseUnlessRoom(did, standing, adding);
  }

  /** Whether `adding` bytes fit the DID's limit now (a usage read in the last few seconds counts). */
  async fits(did: string, adding: number): Promise<boolean> {
    const standing = await this.#standing(did);
    return !standing || standing.used + adding <= standing.limit.bytes;
  }

  /**
   * How many of `wanted` part URLs an upload that has `written` bytes may
   * have: all of them without a limit; near it, only as many parts of
   * `partSize` as fit, so the upload comes back for more (and is refused)
   * within a part of passing it, not a whole batch later.
   */
  async partsWithin(did: string, written: number, partSize: number, wanted: number): Promise<number> {
    if (wanted === 0) return wanted;
    const standing = await this.#standing(did);
    if (!standing) return wanted;
    this.#refuseUnlessRoom(did, standing, written);
    const room = standing.limit.bytes - standing.used - written;
    return Math.min(wanted, Math.max(1, Math.ceil(room / partSize)));
  }

  /**
   * Starts the reads a charge needs (is the blob charged already; the DID's
   * total), so they run beside other work; pass the result to `charge`.
   * Undefined for a DID without a limit: the owner and DIDs without a tier
   * are not counted, and their pushes make no quota call.
   */
  prepare(did: string, digest: Digest): PreparedCharge | undefined {
    const limit = this.limitOf(did);
    if (!limit) return undefined;
    const key = this.#key({ kind: 'quota-charge', digest, didId: didId(did) });
    const reads = Promise.all([this.#backend.stat(key), this.#readUsage(did)]);
    reads.catch(() => {});
    return { did, limit, key, reads };
  }

  /**
   * Charges the DID for the blob unless it already was; refuses if that
   * would pass its limit. Resolves true when this call charged it. A blob
   * found charged during `prepare` is looked at once more: a deletion that
   * finished since has dropped the charge.
   */
  async charge(did: string, digest: Digest, size: number, prepared = this.prepare(did, digest)): Promise<boolean> {
    if (!prepared) return false;
    const [marker, usage] = await prepared.reads;
    if (marker && (await this.#backend.stat(prepared.key))) return false;
    // One charge of a blob per DID at a time in this process; a second waits for the first's answer.
    const flight = `${did}\n${digest.value}`;
    const running = this.#inFlight.get(flight);
    if (running) return running.then(() => false);
    const charging = this.#locks.run(did, () => this.#charge(prepared, size, usage)).finally(() => this.#inFlight.delete(flight));
    this.#inFlight.set(flight, charging);
    return charging;
  }

  async #charge(prepared: PreparedCharge, size: number, usage: { bytes: number; etag?: string }): Promise<boolean> {
    const { did, limit, key } = prepared;
    try {
      await this.#adjust(did, size, limit, usage);
    } catch (err) {
      // Refused, unless another hold process charged this very blob meanwhile: then it is paid for.
      if (err instanceof HoldError && err.code === 'DENIED' && (await this.#backend.stat(key))) return false;
      throw err;
    }
    try {
      await this.#backend.putSmall(key, Buffer.from(JSON.stringify({ did, size })), { ifNoneMatch: '*' });
      return true;
    } catch (err) {
      if (!(err instanceof StorageError && err.code === 'PRECONDITION_FAILED')) throw err;
      // Another charge of this blob for this DID won the marker: give our share back.
      await this.#adjust(did, -size, undefined);
      return false;
    }
  }

  /** Gives back a charge this process made for a publish that then failed. */
  async refund(did: string, digest: Digest, size: number): Promise<void> {
    await this.#locks.run(did, async () => {
      await this.#backend.delete([this.#key({ kind: 'quota-charge', digest, didId: didId(did) })]);
      await this.#adjust(did, -size, undefined);
    });
  }

  /** After a blob's bytes were deleted: every DID charged for it is charged no more. */
  async releaseAll(digest: Digest): Promise<void> {
    for await (const object of this.#backend.list(this.#key({ kind: 'quota-charges', digest }))) {
      const charge = await this.#readCharge(object.key);
      if (charge) await this.#locks.run(charge.did, () => this.#adjust(charge.did, -charge.size, undefined));
      await this.#backend.delete([object.key]);
    }
  }

  /** Every DID with recorded usage, and its limit. */
  async list(): Promise<QuotaUsage[]> {
    const rows: QuotaUsage[] = [];
    for await (const object of this.#backend.list(this.#key({ kind: 'quota-usage-root' }))) {
      const stored = await this.#backend.getSmall(object.key);
      if (!stored) continue;
      const { did, bytes } = JSON.parse(Buffer.from(stored.body).toString()) as { did: string; bytes: number };
      const limit = this.limitOf(did);
      rows.push({ did, bytes, ...(limit ? { limit } : {}) });
    }
    return rows.sort((a, b) => (a.did < b.did ? -1 : 1));
  }

  /**
   * Recounts every DID's usage from its charges, dropping charges for blobs
   * no longer stored, and compares with the recorded totals; `fix` writes
   * the recount. Run it while nothing pushes: a push between the recount and
   * the write would be lost from the total.
   */
  async check(options: { fix: boolean }): Promise<{ did: string; recorded: number; counted: number; staleCharges: number }[]> {
    const counted = new Map<string, { bytes: number; stale: number }>();
    for await (const object of this.#backend.list(this.#key({ kind: 'quota-charges-root' }))) {
      const charge = await this.#readCharge(object.key);
      if (!charge) continue;
      const entry = counted.get(charge.did) ?? { bytes: 0, stale: 0 };
      counted.set(charge.did, entry);
      const digest = this.#digestOfCharge(object.key);
      if (digest && (await this.#backend.stat(this.#key({ kind: 'blob', digest })))) {
        entry.bytes += charge.size;
        continue;
      }
      entry.stale++;
      if (options.fix) await this.#backend.delete([object.key]);
    }
    for (const row of await this.list()) if (!counted.has(row.did)) counted.set(row.did, { bytes: 0, stale: 0 });
    const report = [];
    for (const [did, entry] of [...counted].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const recorded = await this.usage(did);
      report.push({ did, recorded, counted: entry.bytes, staleCharges: entry.stale });
      if (options.fix && recorded !== entry.bytes) await this.#locks.run(did, () => this.#adjust(did, entry.bytes - recorded, undefined));
    }
    return report;
  }

  /** The DID's limit and usage; undefined without a limit (then nothing is read). */
  async #standing(did: string): Promise<{ limit: QuotaLimit; used: number } | undefined> {
    const limit = this.limitOf(did);
    return limit ? { limit, used: await this.#used(did) } : undefined;
  }

  /** `adding` 0 is a new upload: refused at the limit itself; more is refused past it. */
  #refuseUnlessRoom(did: string, { limit, used }: { limit: QuotaLimit; used: number }, adding: number): void {
    if (adding === 0 ? used >= limit.bytes : used + adding > limit.bytes) throw this.#exceeded(did, used, limit, adding, adding === 0 ? 'start' : 'upload');
  }

  /** The DID's usage, as read in the last few seconds if it was. */
  async #used(did: string): Promise<number> {
    const cached = this.#cached.get(did);
    return cached && performance.now() - cached.at < USAGE_CACHE_MS ? cached.bytes : this.usage(did);
  }

  async #readUsage(did: string): Promise<{ bytes: number; etag?: string }> {
    const stored = await this.#backend.getSmall(this.#key({ kind: 'quota-usage', didId: didId(did) }));
    const bytes = stored ? (JSON.parse(Buffer.from(stored.body).toString()) as { bytes: number }).bytes : 0;
    this.#cached.set(did, { bytes, at: performance.now() });
    return stored ? { bytes, etag: stored.etag } : { bytes };
  }

  /** Adds `delta` to the DID's total by compare-and-swap, refusing an increase past `limit`; `read` saves the first read. */
  async #adjust(did: string, delta: number, limit: QuotaLimit | undefined, read?: { bytes: number; etag?: string }): Promise<void> {
    const key = this.#key({ kind: 'quota-usage', didId: didId(did) });
    for (let attempt = 0; attempt < MAX_SWAPS; attempt++) {
      const current = attempt === 0 && read ? read : await this.#readUsage(did);
      const next = Math.max(0, current.bytes + delta);
      if (limit && delta > 0 && next > limit.bytes) throw this.#exceeded(did, current.bytes, limit, delta, 'charge');
      try {
        await this.#backend.putSmall(key, Buffer.from(JSON.stringify({ did, bytes: next })), current.etag ? { ifMatch: current.etag } : { ifNoneMatch: '*' });
        this.#cached.set(did, { bytes: next, at: performance.now() });
        return;
      } catch (err) {
        if (!(err instanceof StorageError && err.code === 'PRECONDITION_FAILED')) throw err;
      }
    }
    throw new HoldError('BACKEND_UNAVAILABLE', 'quota usage changed too often to update; retry');
  }

  async #readCharge(key: string): Promise<{ did: string; size: number } | undefined> {
    const stored = await this.#backend.getSmall(key);
    return stored ? (JSON.parse(Buffer.from(stored.body).toString()) as { did: string; size: number }) : undefined;
  }

  #digestOfCharge(key: string): Digest | undefined {
    const [algorithm, hex] = key.slice(this.#key({ kind: 'quota-charges-root' }).length).split('/');
    return parseDigest(`${algorithm}:${hex}`);
  }

  #exceeded(did: string, used: number, limit: QuotaLimit, adding: number, phase: QuotaPhase): HoldError {
    this.#onRefusal(phase);
    const adds = adding > 0 ? `; this push adds ${formatBytes(adding)}` : '';
    return new HoldError('DENIED', `quota exceeded for ${did} on ${this.#settings.hold}: ${formatBytes(used)} used of ${formatBytes(limit.bytes)} (tier ${limit.tier})${adds}`);
  }

  #key(spec: Parameters<typeof storageKey>[0]): string {
    return storageKey(spec, this.#prefix);
  }
}
