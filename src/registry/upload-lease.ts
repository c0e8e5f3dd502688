import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from './errors.ts';
import type { UploadHold, UploadHolds } from '../metadata/oci/upload-holds.ts';

export interface UploadLeaseOptions {
  /** How long a take lasts unless renewed; renewed every quarter of it. */
  leaseMs: number;
  /** How long `take` waits for another request writing the same upload. */
  waitMs: number;
  /** Test-only: while true, leases are not renewed, as in a process that stopped. */
  renewalsPaused?: () => boolean;
}

/**
 * The points of an upload request a test can pause at: the upload taken,
 * the request's bytes read, and those bytes durable (before the upload is
 * given back and the request acknowledged).
 */
export type UploadRequestStep = 'upload-taken' | 'chunk-received' | 'chunk-durable';

/** Test-only: awaited at each step with the upload's id. */
export type UploadRequestStepHook = (step: UploadRequestStep, uploadId: string) => Promise<void>;

const FIRST_RETRY_MS = 20;
const MAX_RETRY_MS = 500;

/**
 * Takes uploads for this process's requests, one request per upload across
 * every instance (the database's `UploadHolds`). A request on this instance
 * first waits its turn in the in-process lock, so only one request per
 * upload polls the database here.
 */
export class UploadLeases {
  readonly #holds: UploadHolds;
  readonly #options: UploadLeaseOptions;
  /** This registry's name as a holder: another instance, or this one after a restart, is someone else. */
  readonly #holder = randomUUID();

  constructor(holds: UploadHolds, options: UploadLeaseOptions) {
    this.#holds = holds;
    this.#options = options;
  }

  /**
   * Waits until no other request holds the upload (or its holder's lease
   * ran out), then holds it. `BLOB_UPLOAD_UNKNOWN` when the upload is gone;
   * `TOOMANYREQUESTS` when another request kept it for the whole wait, which
   * counts from `since` (when the request arrived, by `performance.now()`).
   */
  async take(id: string, since = performance.now()): Promise<UploadLease> {
    const deadline = since + this.#options.waitMs;
    for (let delay = FIRST_RETRY_MS; ; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const startedAt = performance.now();
      const taken = await this.#holds.take(id, this.#holder, this.#options.leaseMs);
      if (taken === 'unknown') throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
      if (taken !== 'busy') {
        return new UploadLease(this.#holds, { id, holder: this.#holder, hold: taken, startedAt, leaseMs: this.#options.leaseMs, renewalsPaused: this.#options.renewalsPaused });
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new RegistryError('TOOMANYREQUESTS', 'another request is writing this upload; retry once it has finished', { headers: { 'retry-after': '1' } });
      }
      await sleep(Math.min(delay, left));
    }
  }
}

/**
 * One request's hold on an upload. It renews itself every quarter of the
 * lease; if a renewal finds the upload taken, or none succeeds before two
 * thirds of the lease have passed by this process's clock (two chances; the
 * database's clock may run ahead), `signal` aborts: the request must stop writing and must
 * not acknowledge anything. The hold refuses its writes anyway once the
 * next holder has taken over (the driver's `UploadFence`).
 */
export class UploadLease {
  readonly epoch: number;
  /** The driver's state the previous holder left. */
  readonly state: string | undefined;
  /** The previous holder's lease ran out: it may still be writing. */
  readonly tookOver: boolean;
  readonly #holds: UploadHolds;
  readonly #id: string;
  readonly #holder: string;
  readonly #leaseMs: number;
  readonly #lost = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #renewalsPaused: (() => boolean) | undefined;
  /** By `performance.now()`: past this, this process no longer counts on the lease. */
  #validUntil: number;
  #released: Promise<boolean> | undefined;
  /** A renewal is on its way to the database: the next tick does not send another. */
  #renewing = false;

  constructor(holds: UploadHolds, taken: { id: string; holder: string; hold: UploadHold; startedAt: number; leaseMs: number; renewalsPaused?: (() => boolean) | undefined }) {
    this.#holds = holds;
    this.#renewalsPaused = taken.renewalsPaused;
    this.#id = taken.id;
    this.#holder = taken.holder;
    this.#leaseMs = taken.leaseMs;
    this.epoch = taken.hold.epoch;
    this.state = taken.hold.state;
    this.tookOver = taken.hold.tookOver;
    this.#validUntil = this.#validFrom(taken.startedAt);
    this.#timer = setInterval(() => void this.#renew(), Math.max(1, Math.floor(taken.leaseMs / 4)));
    this.#timer.unref();
  }

  /** Aborts when the lease is lost. */
  get signal(): AbortSignal {
    return this.#lost.signal;
  }

  get lost(): boolean {
    return this.#lost.signal.aborted || performance.now() > this.#validUntil;
  }

  /** Throws `UNAVAILABLE` once the lease is lost. */
  assertHeld(): void {
    if (this.lost) this.throwLost('the upload lease ran out before it could be renewed');
  }

  /** Throws `UNAVAILABLE`: the lease is lost (for `reason`, unless it was lost already). */
  throwLost(reason: string): never {
    if (!this.#lost.signal.aborted) this.#lose(reason);
    throw this.#lost.signal.reason;
  }

  /**
   * Gives the upload up, leaving `state` (the driver's, for the next
   * request) in its row. Resolves false when the lease was lost first:
   * another request may have written since, so nothing this request did may
   * be acknowledged. A lease this process stopped counting on is still given
   * up (without a state) if the row says it is, so the next request need not
   * wait it out. Safe to call twice; the first call's state counts.
   */
  release(state?: string): Promise<boolean> {
    this.#released ??= (async () => {
      clearInterval(this.#timer);
      const lost = this.lost;
      const released = await this.#holds.release(this.#id, this.#holder, this.epoch, lost ? undefined : state);
      return released && !lost;
    })();
    return this.#released;
  }

  async #renew(): Promise<void> {
    if (this.#released || this.#renewing || this.#lost.signal.aborted || this.#renewalsPaused?.()) return;
    if (performance.now() > this.#validUntil) return this.#lose('the upload lease ran out before it could be renewed');
    const startedAt = performance.now();
    this.#renewing = true;
    try {
      if (await this.#holds.renew(this.#id, this.#holder, this.epoch, this.#leaseMs)) this.#validUntil = this.#validFrom(startedAt);
      else this.#lose('another request took the upload over');
    } catch {
      // The next tick tries again while the lease may still be ours.
    } finally {
      this.#renewing = false;
    }
  }

  #validFrom(startedAt: number): number {
    return startedAt + (this.#leaseMs * 2) / 3;
  }

  #lose(reason: string): void {
    clearInterval(this.#timer);
    this.#lost.abort(new RegistryError('UNAVAILABLE', `${reason}; ask for the upload's status and continue from its offset`));
  }
}
