import { KeyedMutex } from '../core/keyed-mutex.ts';
import { parseDigest, type Digest } from '../core/digest.ts';
import type { Access, AccessPolicy } from './auth/policy.ts';
import { HoldError } from './errors.ts';
import { storageKey } from './keys.ts';
import { parseUploadName, type UploadName } from '../protocol/upload-names.ts';
import { UploadRecordStore, isUsable, type UploadRecord } from './uploads/records.ts';
import type { HoldStagedSegment } from '../protocol/hold-api.ts';
import { mappingStorageErrors } from './storage-errors.ts';
import { BlobLifecycle } from './publishing/blob-lifecycle.ts';
import type { ProtocolStep, StepHook } from './protocol-steps.ts';
import { Quotas, type QuotaPhase, type QuotaSettings } from './quotas/quotas.ts';
import { StorageError, type CompletedPartInput, type StorageBackend } from './backends/types.ts';
import type { JanitorBudget } from './cleanup/janitor.ts';

export interface HoldServiceOptions {
  backend: StorageBackend;
  policy: AccessPolicy;
  prefix: string;
  presignTtlSeconds: number;
  /** An upload idle this long is aborted by the janitor. */
  uploadTtlSeconds: number;
  now?: () => Date;
  /** Held by a deletion of a blob; a holder that died is taken over after it. */
  deletionLeaseSeconds?: number;
  /** Test-only: awaited at each step of release and move, so a test can pause either there. */
  onStep?: StepHook;
  /** Storage limits per DID; without them nothing is counted. */
  quotas?: QuotaSettings;
  /** Counts each quota refusal (metrics). */
  onQuotaRefusal?: (phase: QuotaPhase) => void;
  /** How much of the uploads prefix one janitor pass covers (`DEFAULT_JANITOR_BUDGET` by default). */
  janitorBudget?: Partial<JanitorBudget>;
}

export const DEFAULT_DELETION_LEASE_SECONDS = 300;

/**
 * What the parts of the hold's service share: its storage, upload records
 * and blob lifecycle, and the checks every endpoint makes (access, the
 * caller's own upload, one update of a record at a time).
 */
export class HoldContext {
  readonly backend: StorageBackend;
  readonly prefix: string;
  readonly records: UploadRecordStore;
  readonly blobs: BlobLifecycle;
  readonly quotas: Quotas | undefined;
  readonly presignTtl: number;
  readonly uploadTtlMs: number;
  readonly now: () => Date;
  readonly #policy: AccessPolicy;
  readonly #onStep: StepHook | undefined;
  readonly #uploadLocks = new KeyedMutex();

  constructor(options: HoldServiceOptions) {
    this.backend = options.backend;
    this.#policy = options.policy;
    this.prefix = options.prefix;
    this.records = new UploadRecordStore(options.backend, options.prefix);
    this.presignTtl = options.presignTtlSeconds;
    this.uploadTtlMs = options.uploadTtlSeconds * 1000;
    this.now = options.now ?? (() => new Date());
    this.#onStep = options.onStep;
    const quotas = options.quotas
      ? new Quotas({ backend: options.backend, prefix: options.prefix, settings: options.quotas, ...(options.onQuotaRefusal ? { onRefusal: options.onQuotaRefusal } : {}) })
      : undefined;
    this.quotas = quotas;
    this.blobs = new BlobLifecycle({
      ...(quotas ? { onDeleted: (digest: Digest) => quotas.releaseAll(digest) } : {}),
      backend: options.backend,
      prefix: options.prefix,
      leaseMs: (options.deletionLeaseSeconds ?? DEFAULT_DELETION_LEASE_SECONDS) * 1000,
      now: this.now,
      step: (step, digest) => this.step(`release:${step}`, digest),
    });
  }

  key(spec: Parameters<typeof storageKey>[0]): string {
    return storageKey(spec, this.prefix);
  }

  /** Where a staged segment's bytes are: its own key (`segment_id`), or the offset's key in records from before segment ids. */
  stagedKey(upload: UploadName, segment: HoldStagedSegment): string {
    return this.key({ kind: 'upload-staged', upload, offset: segment.offset, ...(segment.segment_id !== undefined ? { segment: segment.segment_id } : {}) });
  }

  /** Where an upload's bytes are: beside its record (version 1) or under objects/ (version 2). */
  dataKey(upload: UploadName, record: UploadRecord): string {
    return this.key(record.version === 1 ? { kind: 'upload-data', upload } : { kind: 'upload-object', upload });
  }

  /**
   * Assembles an upload's parts. A provider that no longer knows the upload
   * but holds its object completed it already, from other parts than these
   * (a repeat from these very parts is accepted by the backend): that is a
   * conflict, not an unknown upload.
   */
  async complete(key: string, uploadId: string, parts: readonly CompletedPartInput[]): Promise<void> {
    try {
      await this.backend.completeMultipartUpload(key, uploadId, parts);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'UPLOAD_UNKNOWN' && (await this.backend.stat(key))) {
        throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload was completed from other parts');
      }
      throw err;
    }
  }

  authorize(did: string, access: Access): void {
    if (!this.#policy.allows(did, access)) throw new HoldError('DENIED', `${did} has no ${access} access to this hold`);
  }

  /**
   * The caller's record for an upload name; not found and not-yours look the
   * same. `remembered` accepts this process's last copy (see
   * `UploadRecordStore#read`): for URLs, which do not depend on the upload's
   * progress, and for writes that `startingOverIfStale`.
   */
  async ownedRecord(
    did: string,
    name: string,
    uploadId: string,
    options: { remembered?: boolean } = {},
  ): Promise<{ upload: UploadName; record: UploadRecord; etag: string }> {
    const upload = parseUploadName(name);
    if (!upload) throw new HoldError('DIGEST_INVALID', 'digest must be an upload name this hold issued');
    const read = await mappingStorageErrors(() => this.records.read(upload, options));
    if (!read || read.record.did !== did || !isUsable(read.record) || read.record.upload_id !== uploadId) throw new HoldError('UPLOAD_UNKNOWN');
    return { upload, record: read.record, etag: read.etag };
  }

  async openRecord(did: string, name: string, uploadId: string, kind: UploadRecord['kind'], options: { remembered?: boolean } = {}) {
    const owned = await this.ownedRecord(did, name, uploadId, options);
    if (owned.record.kind !== kind) throw new HoldError('UPLOAD_UNKNOWN', `this upload is not a ${kind} upload`);
    if (owned.record.state !== 'open') throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload is already complete');
    return owned;
  }

  /**
   * Runs a read-modify-write of one upload's record alone in this process.
   * Where the provider has conditional writes, If-Match also guards it across
   * processes; where it has none, this is the only guard (see
   * docs/PRESIGNED_URLS.md, "Guarantees by provider").
   */
  updating<T>(uploadName: string, work: () => Promise<T>): Promise<T> {
    return this.#uploadLocks.run(uploadName, work);
  }

  /**
   * Runs a read-modify-write first on the remembered record, which saves a
   * read per PATCH; if that copy was stale (another hold process wrote since),
   * the conditional write or a check refuses it, and the work runs once more
   * on a fresh read.
   */
  async startingOverIfStale<T>(work: (remembered: boolean) => Promise<T>): Promise<T> {
    try {
      return await work(true);
    } catch (err) {
      if (!(err instanceof HoldError) || (err.code !== 'UPLOAD_STATE_CONFLICT' && err.code !== 'UPLOAD_UNKNOWN')) throw err;
      return work(false);
    }
  }

  async step(step: ProtocolStep, subject: Digest | string): Promise<void> {
    if (this.#onStep) await this.#onStep(step, typeof subject === 'string' ? subject : subject.value);
  }
}

/**
 * Refuses a write from a writer that lost the upload to another: one naming
 * a lower `writer_epoch` than the record has seen (a call without one names
 * 0). Registries send their upload's epoch with every write and record a
 * takeover with `/upload-status` before writing a byte, so a writer whose
 * hold ran out can never record, complete or publish over its successor.
 */
export function assertCurrentWriter(record: UploadRecord, epoch: number | undefined): void {
  const recorded = record.writer_epoch ?? 0;
  if ((epoch ?? 0) < recorded) {
    throw new HoldError('UPLOAD_STATE_CONFLICT', `another writer took this upload over (epoch ${recorded}); this call names epoch ${epoch ?? 0}`);
  }
}

/** The record's `writer_epoch` after a write that named `epoch`. */
export function laterEpoch(record: UploadRecord, epoch: number | undefined): { writer_epoch?: number } {
  const latest = Math.max(record.writer_epoch ?? 0, epoch ?? 0);
  return latest > 0 ? { writer_epoch: latest } : {};
}

export function requireContentDigest(input: string): Digest {
  const digest = parseDigest(input);
  if (!digest) throw new HoldError('DIGEST_INVALID', 'digest must be sha256:<64 hex> or sha512:<128 hex>');
  return digest;
}
