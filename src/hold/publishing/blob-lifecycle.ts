import type { Digest } from '../../core/digest.ts';
import { HoldError } from '../errors.ts';
import { digestFromDeletingKey, issuerId, storageKey, uploadFromObjectKey } from '../keys.ts';
import { DeletionLeases } from './deletion-lease.ts';
import type { StorageBackend } from '../backends/types.ts';
import type { ReleaseStep } from '../protocol-steps.ts';

/** Called at each step of a deletion, so a test can pause it there. */
export type StepNotifier = (step: ReleaseStep, digest: Digest) => Promise<void>;

export interface BlobLifecycleOptions {
  backend: StorageBackend;
  prefix: string;
  leaseMs: number;
  now: () => Date;
  step: StepNotifier;
  /** After a blob's bytes were deleted (quotas drop their charges). */
  onDeleted?: (digest: Digest) => Promise<void>;
}

/** How long `/move` and `/claim` wait for a deletion in progress before answering 503. */
const DELETION_WAIT_MS = 2_000;
const DELETION_POLL_MS = 25;

/**
 * Claims and deletions of published blobs: the cross-registry protocol of
 * docs/GC.md. A registry's claim is written before it relies on a blob; a
 * deletion holds the digest's lease, counts claims again under it, and only
 * then deletes; a caller about to rely on a blob waits until no lease is
 * held. Either the deletion's second count sees the claim, or the caller's
 * check comes after the deletion finished and sees the blob gone.
 */
export class BlobLifecycle {
  readonly #backend: StorageBackend;
  readonly #prefix: string;
  readonly #leases: DeletionLeases;
  readonly #step: StepNotifier;
  readonly #onDeleted: (digest: Digest) => Promise<void>;

  constructor(options: BlobLifecycleOptions) {
    this.#onDeleted = options.onDeleted ?? (async () => {});
    this.#backend = options.backend;
    this.#prefix = options.prefix;
    this.#leases = new DeletionLeases(options);
    this.#step = options.step;
  }

  async putClaim(digest: Digest, issuer: string): Promise<void> {
    await this.#backend.putSmall(this.#claimKey(digest, issuer), Buffer.from(JSON.stringify({ issuer })));
  }

  async dropClaim(digest: Digest, issuer: string): Promise<void> {
    await this.#backend.delete([this.#claimKey(digest, issuer)]);
  }

  async countClaims(digest: Digest): Promise<number> {
    let count = 0;
    for await (const _claim of this.#backend.list(this.#key({ kind: 'blob-claims', digest }))) count++;
    return count;
  }

  /**
   * Resolves once no deletion of `digest` holds its lease; call it after
   * writing the caller's claim and before looking at the blob. An expired
   * lease is taken over and its abandoned work undone. Answers
   * `BACKEND_UNAVAILABLE` (retry) when a live deletion outlasts the wait.
   */
  async awaitNoDeletion(digest: Digest): Promise<void> {
    const deadline = performance.now() + DELETION_WAIT_MS;
    for (;;) {
      const state = await this.#leases.state(digest);
      if (state === 'none') return;
      if (state === 'expired') {
        const lease = await this.#leases.acquire(digest);
        if (lease) {
          try {
            await this.#removeAbandoned(digest, lease.abandonedTarget);
          } finally {
            await lease.end();
          }
          continue;
        }
      }
      if (performance.now() >= deadline) throw new HoldError('BACKEND_UNAVAILABLE', 'this blob is being deleted; retry');
      await new Promise((resolve) => setTimeout(resolve, DELETION_POLL_MS));
    }
  }

  /**
   * Deletes the blob if no registry claims it: under the digest's lease,
   * counts claims again and deletes the reference (or object), then the
   * bytes it names. A crash leaks bytes rather than leaving a dangling
   * reference; the janitor finishes it once the lease expires.
   */
  async deleteUnclaimed(digest: Digest): Promise<{ deleted: boolean; remaining_claims: number }> {
    const key = this.#key({ kind: 'blob', digest });
    const before = await this.#backend.stat(key);
    if (!before) return { deleted: false, remaining_claims: 0 };
    const lease = await this.#leases.acquire(digest, before.target);
    // Another deletion of this digest is under way and will count the claims itself.
    if (!lease) return { deleted: false, remaining_claims: 0 };
    try {
      await this.#step('lease-taken', digest);
      await this.#removeAbandoned(digest, lease.abandonedTarget);
      const remaining = await this.countClaims(digest);
      await this.#step('claims-recounted', digest);
      if (remaining > 0) return { deleted: false, remaining_claims: remaining };
      const object = await this.#backend.stat(key);
      await this.#step('blob-checked', digest);
      if (!object) return { deleted: false, remaining_claims: 0 };
      if (!lease.canDelete()) throw new HoldError('BACKEND_UNAVAILABLE', 'the deletion took too long to start safely; retry');
      await this.#backend.delete([key]);
      await this.#step('reference-deleted', digest);
      if (object.target) await this.#backend.delete([this.checkedTarget(object.target)]);
      await this.#onDeleted(digest);
      return { deleted: true, remaining_claims: 0 };
    } finally {
      await lease.end();
    }
  }

  /**
   * The janitor's part: deletions whose holder died left an expired lease.
   * Takes each over and finishes it (when still unclaimed) or undoes it.
   */
  async finishAbandonedDeletions(): Promise<number> {
    let finished = 0;
    for await (const object of this.#backend.list(this.#key({ kind: 'deletions-root' }))) {
      const digest = digestFromDeletingKey(object.key, this.#prefix);
      if (!digest || (await this.#leases.state(digest)) !== 'expired') continue;
      const lease = await this.#leases.acquire(digest);
      if (!lease) continue;
      try {
        await this.#removeAbandoned(digest, lease.abandonedTarget);
        if ((await this.countClaims(digest)) === 0 && lease.canDelete()) {
          const key = this.#key({ kind: 'blob', digest });
          const blob = await this.#backend.stat(key);
          if (blob) {
            await this.#backend.delete([key]);
            if (blob.target) await this.#backend.delete([this.checkedTarget(blob.target)]);
            await this.#onDeleted(digest);
          }
        }
        finished++;
      } finally {
        await lease.end();
      }
    }
    return finished;
  }

  /** A reference read back from the bucket may only name an upload object under our prefix. */
  checkedTarget(target: string): string {
    if (!uploadFromObjectKey(target, this.#prefix)) throw new HoldError('INTERNAL', "a blob reference names a key outside this hold's objects");
    return target;
  }

  /** Bytes an abandoned deletion had unreferenced but not yet deleted. */
  async #removeAbandoned(digest: Digest, target: string | undefined): Promise<void> {
    if (!target) return;
    const blob = await this.#backend.stat(this.#key({ kind: 'blob', digest }));
    if (blob?.target !== target) await this.#backend.delete([this.checkedTarget(target)]);
  }

  #claimKey(digest: Digest, issuer: string): string {
    return this.#key({ kind: 'blob-claim', digest, issuerId: issuerId(issuer) });
  }

  #key(spec: Parameters<typeof storageKey>[0]): string {
    return storageKey(spec, this.#prefix);
  }
}
