import { randomUUID } from 'node:crypto';
import { KeyedMutex } from '../core/keyed-mutex.ts';
import { parseDigest, type Digest } from '../core/digest.ts';
import type { Access, AccessPolicy } from './auth/policy.ts';
import { HoldError } from './errors.ts';
import { parseBlobRef, parseUploadName, storageKey, uploadNameFromUuid, type UploadName } from './keys.ts';
import { assertCompletableParts, assertNonFinalPartSizes, assertPartNumber, normalizeEtag } from './multipart-rules.ts';
import { UploadSessionStore, isUsable, orphanKeys, uploadNameOf, type SessionPart, type StagedSegment, type UploadSession } from './sessions.ts';
import { mappingStorageErrors } from './storage-errors.ts';
import { BlobLifecycle } from './blob-lifecycle.ts';
import type { ProtocolStep, StepHook } from './protocol-steps.ts';
import { MAX_PART_NUMBER, MIN_PART_SIZE, StorageError, type CompletedPartInput, type ObjectInfo, type StorageBackend } from './backends/types.ts';
import type { HoldPart, HoldPartUrl } from '../protocol/hold-api.ts';

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
}

export interface UploadView {
  upload_name: string;
  upload_id: string;
  state: UploadSession['state'];
  created_at: string;
  updated_at: string;
  expires_at: string;
  size: number;
  /** Set once the multipart upload is complete: the assembled object's size. */
  completed_size?: number;
  parts: readonly SessionPart[];
  staged: readonly StagedSegment[];
  client_state?: Readonly<Record<string, unknown>>;
  part_urls?: PartUrlView[];
}

export type PartUrlView = HoldPartUrl;
/** A part a publish completes the upload with (`/move` with `parts`). */
export type CompletingPart = HoldPart;

export interface PresignedUrlView {
  url: string;
  expires_at: string;
  method: 'PUT' | 'GET' | 'HEAD';
  upload_name?: string;
}

const MAX_CLIENT_STATE_BYTES = 4096;
export const DEFAULT_DELETION_LEASE_SECONDS = 300;

/**
 * The hold's operations, one method per endpoint, independent of HTTP. Every
 * method takes the authenticated DID and already-typed input; it checks
 * access, and maps storage errors to `HoldError`.
 */
export class HoldService {
  readonly #backend: StorageBackend;
  readonly #policy: AccessPolicy;
  readonly #prefix: string;
  readonly #sessions: UploadSessionStore;
  readonly #presignTtl: number;
  readonly #uploadTtlMs: number;
  readonly #now: () => Date;
  readonly #onStep: StepHook | undefined;
  readonly #blobs: BlobLifecycle;
  readonly #uploadLocks = new KeyedMutex();

  constructor(options: HoldServiceOptions) {
    this.#backend = options.backend;
    this.#policy = options.policy;
    this.#prefix = options.prefix;
    this.#sessions = new UploadSessionStore(options.backend, options.prefix);
    this.#presignTtl = options.presignTtlSeconds;
    this.#uploadTtlMs = options.uploadTtlSeconds * 1000;
    this.#now = options.now ?? (() => new Date());
    this.#onStep = options.onStep;
    this.#blobs = new BlobLifecycle({
      backend: options.backend,
      prefix: options.prefix,
      leaseMs: (options.deletionLeaseSeconds ?? DEFAULT_DELETION_LEASE_SECONDS) * 1000,
      now: this.#now,
      step: (step, digest) => this.#step(`release:${step}`, digest),
    });
  }

  get backend(): StorageBackend {
    return this.#backend;
  }

  async startMultipart(
    did: string,
    input: { digest?: string; client_state?: Record<string, unknown>; presign_parts?: number },
  ): Promise<{ upload_id: string; upload_name: string; expires_at: string; part_urls?: PartUrlView[] }> {
    this.#authorize(did, 'write');
    const expected = input.digest === undefined ? undefined : requireContentDigest(input.digest);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      const session = await this.#beginUpload(this.#newSession(uploadNameFromUuid(randomUUID()), did, 'multipart', expected, input.client_state));
      return { upload_id: session.upload_id, upload_name: session.name, expires_at: this.#expiresAt(session), ...(await this.#partUrls(session, input.presign_parts)) };
    });
  }

  /**
   * PUT URLs for the `count` parts after the recorded ones: presigning is
   * local, so handing them out with an answer the caller needs anyway saves
   * it a `/part-presigned-url` round trip per part.
   */
  async #partUrls(session: UploadSession, count = 0): Promise<{ part_urls?: PartUrlView[] }> {
    if (count === 0 || session.state !== 'open' || session.kind !== 'multipart') return {};
    const key = this.#dataKey(uploadNameOf(session), session);
    const first = session.parts.length + 1;
    const numbers = Array.from({ length: Math.min(count, MAX_PART_NUMBER - first + 1) }, (_, index) => first + index);
    const urls = await Promise.all(numbers.map((partNumber) => this.#backend.presignUploadPart(key, session.upload_id, partNumber, this.#presignTtl)));
    return { part_urls: urls.map((url, index) => ({ part_number: numbers[index] as number, url: url.url, expires_at: url.expiresAt.toISOString() })) };
  }

  /**
   * Records the upload as starting, creates the provider's multipart upload,
   * then records its id: a hold that dies between the two writes leaves a
   * record, never an upload nothing names (see `#discard`). Two sequential
   * writes either way; the first costs one more small PUT.
   */
  async #beginUpload(starting: UploadSession): Promise<UploadSession> {
    const upload = uploadNameOf(starting);
    await this.#sessions.put(starting);
    let session = starting;
    try {
      const uploadId = await this.#backend.createMultipartUpload(this.#key({ kind: 'upload-object', upload }));
      session = { ...starting, upload_id: uploadId, state: 'open' };
      await this.#step('start:upload-created', upload.value);
      await this.#sessions.put(session);
      return session;
    } catch (err) {
      await this.#discard(upload, session).catch(() => {});
      throw err;
    }
  }

  async partPresignedUrl(did: string, input: { digest: string; upload_id: string; part_number: number }): Promise<PresignedUrlView> {
    this.#authorize(did, 'write');
    assertPartNumber(input.part_number);
    const { upload, session } = await this.#openSession(did, input.digest, input.upload_id, 'multipart', { remembered: true });
    return mappingStorageErrors(async () => {
      const key = this.#dataKey(upload, session);
      return view(await this.#backend.presignUploadPart(key, session.upload_id, input.part_number, this.#presignTtl));
    });
  }

  async completeMultipart(
    did: string,
    input: { digest: string; upload_id: string; parts: readonly { part_number: number; etag: string; size?: number }[] },
  ): Promise<{ upload_name: string; size: number }> {
    this.#authorize(did, 'write');
    assertCompletableParts(input.parts);
    return this.#updating(input.digest, () => this.#complete(did, input));
  }

  async #complete(did: string, input: Parameters<HoldService['completeMultipart']>[1]): Promise<{ upload_name: string; size: number }> {
    const { upload, session, etag } = await this.#ownedSession(did, input.digest, input.upload_id);
    if (session.kind !== 'multipart') throw new HoldError('UPLOAD_UNKNOWN', 'this upload is not a multipart upload');
    if (session.state === 'completed') return { upload_name: upload.value, size: session.completed_size ?? 0 };
    const recorded = new Map(session.parts.map((part) => [part.part_number, part.size]));
    assertNonFinalPartSizes(input.parts.map((part) => ({ part_number: part.part_number, size: part.size ?? recorded.get(part.part_number) })));
    return mappingStorageErrors(async () => {
      const key = this.#dataKey(upload, session);
      const parts = input.parts.map((part) => ({ partNumber: part.part_number, etag: normalizeEtag(part.etag) }));
      await this.#backend.completeMultipartUpload(key, session.upload_id, parts);
      const object = await this.#backend.stat(key);
      const size = object?.size ?? 0;
      await this.#sessions.put({ ...session, state: 'completed', completed_size: size, updated_at: this.#now().toISOString() }, etag);
      return { upload_name: upload.value, size };
    });
  }

  async abortMultipart(did: string, input: { digest: string; upload_id: string }): Promise<{ aborted: true }> {
    this.#authorize(did, 'write');
    const { upload, session } = await this.#ownedSession(did, input.digest, input.upload_id);
    await mappingStorageErrors(() => this.#discard(upload, session));
    return { aborted: true };
  }

  /**
   * For a content digest: a PUT URL for a new single-object upload, which
   * `/move` then completes and publishes once the caller has verified the bytes. For an
   * upload name with an `offset`: a PUT URL for that staged tail segment.
   */
  async putPresignedUrl(did: string, input: { digest: string; upload_id?: string; offset?: number }): Promise<PresignedUrlView> {
    this.#authorize(did, 'write');
    const ref = requireBlobRef(input.digest);
    return mappingStorageErrors(async () => {
      if (ref.kind === 'digest') {
        // A one-part multipart upload, which /move completes: once complete, the
        // part URL writes nothing, so no URL this hold issued can change bytes
        // after they were published (a presigned PutObject URL could, for 15 minutes).
        const session = await this.#beginUpload(this.#newSession(uploadNameFromUuid(randomUUID()), did, 'single', ref.digest));
        const presigned = await this.#backend.presignUploadPart(this.#dataKey(uploadNameOf(session), session), session.upload_id, 1, this.#presignTtl);
        return { ...view(presigned), upload_name: session.name };
      }
      if (input.offset === undefined) throw new HoldError('INVALID_REQUEST', 'offset is required to stage bytes of an upload');
      const { upload } = await this.#openSession(did, input.digest, requireUploadId(input.upload_id), 'multipart', { remembered: true });
      return view(await this.#backend.presignPut(this.#key({ kind: 'upload-staged', upload, offset: input.offset }), this.#presignTtl));
    });
  }

  /**
   * A GET (or HEAD) URL for a blob, or for the caller's own upload: its staged
   * segment at `offset`, or its assembled temp data when `offset` is absent.
   */
  async getPresignedUrl(
    did: string,
    input: { digest: string; method?: 'GET' | 'HEAD'; upload_id?: string; offset?: number },
  ): Promise<PresignedUrlView> {
    const ref = requireBlobRef(input.digest);
    const method = input.method ?? 'GET';
    if (ref.kind === 'digest') {
      this.#authorize(did, 'read');
      return mappingStorageErrors(async () => view(await this.#backend.presignGet(await this.#blobBytesKey(ref.digest), this.#presignTtl, method)));
    }
    this.#authorize(did, 'write');
    const { upload, session } = await this.#ownedSession(did, input.digest, requireUploadId(input.upload_id));
    const key = input.offset === undefined ? this.#dataKey(upload, session) : this.#key({ kind: 'upload-staged', upload, offset: input.offset });
    return mappingStorageErrors(async () => view(await this.#backend.presignGet(key, this.#presignTtl, method)));
  }

  /**
   * Publishes a finished upload at its content address: claim the blob for
   * the calling registry, then, unless it is already there, write a reference
   * at the digest that names the upload's object (constant time), or copy the
   * bytes there on backends without references. The claim comes first, so a
   * concurrent `/release` by the same registry either sees it or has already
   * deleted the bytes (and the publish restores them).
   */
  async move(
    did: string,
    input: { from: string; to: string; size?: number; parts?: readonly CompletingPart[] },
    issuer = '',
  ): Promise<{ digest: string; size: number; existed: boolean }> {
    this.#authorize(did, 'write');
    const upload = parseUploadName(input.from);
    if (!upload) throw new HoldError('DIGEST_INVALID', 'from must be an upload name this hold issued');
    const digest = requireContentDigest(input.to);
    if (input.parts) assertCompletableParts(input.parts);
    return this.#updating(input.from, () =>
      // With parts, the remembered record saves a read; a stale one fails the record's conditional write, and the publish runs again on a fresh read.
      input.parts ? this.#startingOverIfStale((remembered) => this.#publish(did, upload, digest, input, issuer, remembered)) : this.#publish(did, upload, digest, input, issuer, false),
    );
  }

  /**
   * With parts, four rounds of storage calls, each round's calls in
   * parallel: (1) the upload assembled, this registry's claim, and the record
   * naming the digest it publishes; (2) no deletion of the digest running,
   * and the object's size; (3) the reference, create-only; (4) the upload's
   * record and staged segments deleted. Without, the object is looked at
   * first, so a wrong size changes nothing. The claim precedes the deletion check, which precedes
   * any look at the destination (docs/GC.md); the record names the digest
   * before the reference exists, so a janitor that finds it keeps a published
   * object.
   */
  async #publish(
    did: string,
    upload: UploadName,
    digest: Digest,
    input: { size?: number; parts?: readonly CompletingPart[] },
    issuer: string,
    remembered: boolean,
  ): Promise<{ digest: string; size: number; existed: boolean }> {
    const read = await mappingStorageErrors(() => this.#sessions.read(upload, { remembered }));
    if (!read || read.session.did !== did || !isUsable(read.session)) throw new HoldError('UPLOAD_UNKNOWN');
    const { session, etag } = read;
    if (input.parts && session.kind !== 'multipart') throw new HoldError('UPLOAD_UNKNOWN', 'this upload is not a multipart upload');
    if (session.kind === 'multipart' && session.state !== 'completed' && !input.parts) {
      throw new HoldError('UPLOAD_NOT_COMPLETE', 'complete the multipart upload before moving it, or send its parts');
    }
    if (session.expected_digest && session.expected_digest !== digest.value) {
      throw new HoldError('DIGEST_INVALID', 'this upload was started for a different digest');
    }
    const parts = input.parts && session.state !== 'completed' ? this.#completionParts(session, input.parts, input.size) : undefined;
    const byReference = this.#publishesByReference(session);
    return mappingStorageErrors(async () => {
      const source = this.#dataKey(upload, session);
      const destination = this.#key({ kind: 'blob', digest });
      // Without parts to complete, the data is checked before anything changes.
      const found = parts ? undefined : await this.#uploadedObject(source, session, input.size);
      await Promise.all([
        parts && this.#assemble(source, session, parts),
        this.#blobs.putClaim(digest, issuer),
        byReference && session.publishing_digest !== digest.value
          ? this.#sessions.put({ ...session, publishing_digest: digest.value, updated_at: this.#now().toISOString() }, etag)
          : undefined,
      ]);
      await this.#step('move:claimed', digest);
      const [temp] = await Promise.all([found ?? this.#uploadedObject(source, session, input.size), this.#blobs.awaitNoDeletion(digest)]);
      await this.#step('move:deletion-checked', digest);
      let existing: ObjectInfo | undefined;
      if (byReference) {
        await this.#step('move:destination-checked', digest);
        if (await this.#backend.putReference(destination, source, temp.size)) {
          await this.#forgetPublished(upload, session, { keepObject: true });
          return { digest: digest.value, size: temp.size, existed: false };
        }
        existing = await this.#backend.stat(destination);
        if (!existing) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the blob changed while it was published; retry');
      } else {
        existing = await this.#backend.stat(destination);
        await this.#step('move:destination-checked', digest);
        if (!existing) await this.#backend.copy(source, destination, temp.size);
      }
      if (existing?.target === source) {
        // A retry of a publish that wrote its reference: the object is the blob's bytes now.
        await this.#forgetPublished(upload, session, { keepObject: true });
        return { digest: digest.value, size: existing.size, existed: false };
      }
      if (isLegacySingle(session)) {
        // Its PUT URL may still be live: the janitor removes the record, and whatever a late PUT wrote, after the TTL.
        await this.#sessions.put({ ...session, state: 'completed', updated_at: this.#now().toISOString() }, etag);
      } else {
        await this.#forgetPublished(upload, session, { keepObject: false });
      }
      return { digest: digest.value, size: existing?.size ?? temp.size, existed: existing !== undefined };
    });
  }

  /** The upload's data, of `size` bytes when given; a single upload's one part is completed here. */
  async #uploadedObject(source: string, session: UploadSession, size: number | undefined): Promise<ObjectInfo> {
    const object = (await this.#backend.stat(source)) ?? (await this.#completeSinglePart(source, session, size));
    if (!object) throw new HoldError('UPLOAD_NOT_COMPLETE', 'the upload has no data yet');
    if (size !== undefined && size !== object.size) throw new HoldError('SIZE_INVALID', `the upload holds ${object.size} bytes, not ${size}`);
    return object;
  }

  /** Completes a publish's multipart upload; a completion repeated after one that succeeded finds its object. */
  async #assemble(key: string, session: UploadSession, parts: readonly CompletedPartInput[]): Promise<void> {
    try {
      await this.#backend.completeMultipartUpload(key, session.upload_id, parts);
    } catch (err) {
      // The object at an upload's own key can only be that upload assembled.
      if (err instanceof StorageError && err.code === 'UPLOAD_UNKNOWN' && (await this.#backend.stat(key))) return;
      throw err;
    }
  }

  /** The parts a publish completes the upload from: sizes as recorded, and adding up to `size` when given. */
  #completionParts(session: UploadSession, parts: readonly CompletingPart[], size: number | undefined): CompletedPartInput[] {
    const recorded = new Map(session.parts.map((part) => [part.part_number, part.size]));
    for (const part of parts) {
      const known = recorded.get(part.part_number);
      if (known !== undefined && known !== part.size) throw new HoldError('INVALID_PART', `part ${part.part_number} was recorded with ${known} bytes, not ${part.size}`);
    }
    assertNonFinalPartSizes(parts);
    const total = parts.reduce((sum, part) => sum + part.size, 0);
    if (size !== undefined && size !== total) throw new HoldError('SIZE_INVALID', `the parts hold ${total} bytes, not ${size}`);
    return parts.map((part) => ({ partNumber: part.part_number, etag: normalizeEtag(part.etag) }));
  }

  /** Records that the calling registry references an existing blob (e.g. one it adopted from a bucket). */
  async claim(did: string, input: { digest: string }, issuer = ''): Promise<{ digest: string; size: number }> {
    this.#authorize(did, 'write');
    const digest = requireContentDigest(input.digest);
    const key = this.#key({ kind: 'blob', digest });
    return mappingStorageErrors(async () => {
      if (!(await this.#backend.stat(key))) throw new HoldError('BLOB_UNKNOWN');
      await this.#blobs.putClaim(digest, issuer);
      await this.#blobs.awaitNoDeletion(digest);
      // Looked at again once no deletion runs: the first look may predate one that has finished since.
      const object = await this.#backend.stat(key);
      if (!object) {
        await this.#blobs.dropClaim(digest, issuer);
        throw new HoldError('BLOB_UNKNOWN');
      }
      return { digest: digest.value, size: object.size };
    });
  }

  /**
   * The calling registry no longer references the blob. The bytes are deleted
   * when no registry's claim remains, so a hold shared by several registries
   * keeps a blob any of them still uses.
   */
  async release(did: string, input: { digest: string }, issuer = ''): Promise<{ deleted: boolean; remaining_claims: number }> {
    this.#authorize(did, 'write');
    const digest = requireContentDigest(input.digest);
    return mappingStorageErrors(async () => {
      await this.#blobs.dropClaim(digest, issuer);
      await this.#step('release:claim-dropped', digest);
      const remaining = await this.#blobs.countClaims(digest);
      await this.#step('release:claims-counted', digest);
      if (remaining > 0) return { deleted: false, remaining_claims: remaining };
      return this.#blobs.deleteUnclaimed(digest);
    });
  }

  async stat(did: string, input: { digest: string }): Promise<{ digest: string; size: number }> {
    this.#authorize(did, 'read');
    const digest = requireContentDigest(input.digest);
    const object = await mappingStorageErrors(() => this.#backend.stat(this.#key({ kind: 'blob', digest })));
    if (!object) throw new HoldError('BLOB_UNKNOWN');
    return { digest: digest.value, size: object.size };
  }

  /**
   * The older name for `release`, kept for clients of the hold API that call
   * it: on a hold several registries share, a registry may only give up its
   * own claim, never remove bytes another registry still claims.
   */
  async delete(did: string, input: { digest: string }, issuer = ''): Promise<{ deleted: boolean }> {
    return { deleted: (await this.release(did, input, issuer)).deleted };
  }

  async uploadStatus(did: string, input: { digest: string; upload_id: string; presign_parts?: number }): Promise<UploadView> {
    this.#authorize(did, 'write');
    const { session } = await this.#ownedSession(did, input.digest, input.upload_id);
    return { ...this.#view(session), ...(await mappingStorageErrors(() => this.#partUrls(session, input.presign_parts))) };
  }

  /**
   * Records durable progress: parts whose ETags came back, and the staged
   * segments that now hold the tail. `base_size` is the size the caller last
   * saw; a mismatch means another writer moved on, and nothing changes.
   */
  async uploadProgress(
    did: string,
    input: {
      digest: string;
      upload_id: string;
      base_size: number;
      parts?: readonly SessionPart[];
      staged?: readonly StagedSegment[];
      client_state?: Record<string, unknown>;
      presign_parts?: number;
    },
  ): Promise<UploadView> {
    this.#authorize(did, 'write');
    return this.#updating(input.digest, () => this.#startingOverIfStale((remembered) => this.#recordProgress(did, input, remembered)));
  }

  async #recordProgress(did: string, input: Parameters<HoldService['uploadProgress']>[1], remembered: boolean): Promise<UploadView> {
    const { upload, session, etag } = await this.#openSession(did, input.digest, input.upload_id, 'multipart', { remembered });
    if (input.base_size !== session.size) {
      throw new HoldError('UPLOAD_STATE_CONFLICT', `the upload holds ${session.size} bytes, not ${input.base_size}`);
    }
    const parts = [...session.parts, ...(input.parts ?? []).map((part) => ({ ...part, etag: normalizeEtag(part.etag) }))];
    checkRecordedParts(parts, session.parts.length);
    const partBytes = parts.reduce((sum, part) => sum + part.size, 0);
    const staged = input.staged ?? (input.parts?.length ? [] : session.staged);
    checkStagedSegments(staged, partBytes);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      const known = new Set(session.staged.map(segmentId));
      for (const segment of staged.filter((candidate) => !known.has(segmentId(candidate)))) {
        const object = await this.#backend.stat(this.#key({ kind: 'upload-staged', upload, offset: segment.offset }));
        if (object?.size !== segment.size) {
          throw new HoldError('SIZE_INVALID', `staged segment at offset ${segment.offset} holds ${object?.size ?? 0} bytes, not ${segment.size}`);
        }
      }
      const size = staged.reduce((sum, segment) => sum + segment.size, partBytes);
      const updated: UploadSession = {
        ...session,
        parts,
        staged,
        size,
        client_state: input.client_state ?? session.client_state,
        updated_at: this.#now().toISOString(),
      };
      await this.#sessions.put(updated, etag);
      const kept = new Set(staged.map(segmentId));
      const dropped = session.staged.filter((segment) => !kept.has(segmentId(segment)));
      await this.#backend.delete(dropped.map((segment) => this.#key({ kind: 'upload-staged', upload, offset: segment.offset })));
      return { ...this.#view(updated), ...(await this.#partUrls(updated, input.presign_parts)) };
    });
  }

  /**
   * Aborts uploads idle longer than the TTL. The record is first marked
   * `purging_at` over the version found idle, so a write that came in since
   * (through any hold process) keeps the upload, and no call can use it once
   * it is marked. An upload whose record cannot be read right now is skipped,
   * never deleted: a transient error must not destroy a live push.
   */
  async purgeIdleUploads(): Promise<{ purged: number; skipped: number }> {
    const cutoff = this.#now().getTime() - this.#uploadTtlMs;
    let purged = 0;
    let skipped = 0;
    await mappingStorageErrors(async () => {
      for await (const upload of this.#sessions.uploads()) {
        try {
          const read = await this.#sessions.read(upload);
          if (!read) continue;
          let session = read.session;
          if (session.purging_at === undefined) {
            if (Date.parse(session.updated_at) > cutoff) continue;
            await this.#step('purge:session-read', upload.value);
            session = { ...session, purging_at: this.#now().toISOString() };
            if (!(await this.#sessions.putIfUnchanged(session, read.etag))) continue;
          }
          await this.#discard(upload, session);
          purged++;
        } catch {
          skipped++;
        }
      }
    });
    return { purged, skipped };
  }

  /** Deletes what URLs that outlived their uploads wrote (see `orphanKeys`); resolves to how many keys. */
  async collectOrphans(): Promise<number> {
    return mappingStorageErrors(async () => {
      const keys: string[] = [];
      for await (const key of orphanKeys(this.#sessions, this.#backend, this.#prefix)) keys.push(key);
      await this.#backend.delete(keys);
      return keys.length;
    });
  }

  /** Finishes or undoes deletions whose holder died (their lease expired). */
  async finishAbandonedDeletions(): Promise<number> {
    return mappingStorageErrors(() => this.#blobs.finishAbandonedDeletions());
  }

  async #discard(upload: UploadName, session: UploadSession): Promise<void> {
    const key = this.#dataKey(upload, session);
    if (session.state === 'starting') {
      // Its hold may have created the provider's upload and died before recording the id.
      for (const uploadId of await this.#backend.multipartUploadsAt(key)) await this.#backend.abortMultipartUpload(key, uploadId);
    } else if (session.upload_id !== '' && session.state === 'open') {
      await this.#backend.abortMultipartUpload(key, session.upload_id);
    }
    let published = false;
    const publishing = session.publishing_digest === undefined ? undefined : parseDigest(session.publishing_digest);
    if (publishing) {
      // A publish that stopped after writing its reference: the object is the blob's bytes now.
      const blob = await this.#backend.stat(this.#key({ kind: 'blob', digest: publishing }));
      published = blob?.target === key;
    }
    await this.#forgetUpload(upload, session, { keepObject: published });
  }

  /**
   * Where a blob's bytes are: the object a reference names, or the blob key
   * itself. Read from the bucket on every call, never cached: another hold
   * process may have deleted the blob and published the digest again under
   * another object since.
   */
  async #blobBytesKey(digest: Digest): Promise<string> {
    const key = this.#key({ kind: 'blob', digest });
    if (!this.#backend.capabilities.references) return key;
    const object = await this.#backend.stat(key);
    return object?.target ? this.#blobs.checkedTarget(object.target) : key;
  }

  /** Where an upload's bytes are: beside its session (version 1) or under objects/ (version 2). */
  #dataKey(upload: UploadName, session: UploadSession): string {
    return this.#key(session.version === 1 ? { kind: 'upload-data', upload } : { kind: 'upload-object', upload });
  }

  /**
   * Deletes the upload's record, staged segments and (unless `keepObject`,
   * when it holds a published blob's bytes) its object. A version 1 upload's
   * bytes sit in the record's directory and go with it.
   */
  /**
   * `#forgetUpload` for a publish, without listing: the record names every
   * staged segment; a late PUT's leftover is an orphan the janitor collects.
   */
  async #forgetPublished(upload: UploadName, session: UploadSession, options: { keepObject: boolean }): Promise<void> {
    if (session.version === 1) return this.#forgetUpload(upload, session, options);
    this.#sessions.forget(upload);
    const staged = session.staged.map((segment) => this.#key({ kind: 'upload-staged', upload, offset: segment.offset }));
    const object = options.keepObject ? [] : [this.#key({ kind: 'upload-object', upload })];
    await this.#backend.delete([this.#key({ kind: 'upload-session', upload }), ...staged, ...object]);
  }

  async #forgetUpload(upload: UploadName, session: UploadSession, options: { keepObject: boolean }): Promise<void> {
    this.#sessions.forget(upload);
    const object = session.version === 1 || options.keepObject ? [] : [this.#key({ kind: 'upload-object', upload })];
    await this.#backend.delete([...(await this.#sessions.keysOf(upload)), ...object]);
  }

  /**
   * Runs a read-modify-write of one upload's record alone in this process.
   * Where the provider has conditional writes, If-Match also guards it across
   * processes; where it has none, this is the only guard (see
   * docs/PRESIGNED_URLS.md, "Guarantees by provider").
   */
  #updating<T>(uploadName: string, work: () => Promise<T>): Promise<T> {
    return this.#uploadLocks.run(uploadName, work);
  }

  async #step(step: ProtocolStep, subject: Digest | string): Promise<void> {
    if (this.#onStep) await this.#onStep(step, typeof subject === 'string' ? subject : subject.value);
  }

  #publishesByReference(session: UploadSession): boolean {
    return this.#backend.capabilities.references && session.version === 2 && !isLegacySingle(session);
  }

  /**
   * Completes a single upload's one part, when it has been uploaded; nothing
   * changes when `size` does not match it.
   */
  async #completeSinglePart(key: string, session: UploadSession, size: number | undefined): Promise<ObjectInfo | undefined> {
    if (session.kind !== 'single' || isLegacySingle(session)) return undefined;
    const part = await this.#backend.uploadedPart(key, session.upload_id, 1);
    if (!part) return undefined;
    if (size !== undefined && size !== part.size) throw new HoldError('SIZE_INVALID', `the upload holds ${part.size} bytes, not ${size}`);
    await this.#backend.completeMultipartUpload(key, session.upload_id, [{ partNumber: 1, etag: normalizeEtag(part.etag) }]);
    return this.#backend.stat(key);
  }

  #authorize(did: string, access: Access): void {
    if (!this.#policy.allows(did, access)) throw new HoldError('DENIED', `${did} has no ${access} access to this hold`);
  }

  /**
   * The caller's session for an upload name; not found and not-yours look the
   * same. `remembered` accepts this process's last copy (see
   * `UploadSessionStore#read`): for URLs, which do not depend on the upload's
   * progress, and for writes that `#startingOverIfStale`.
   */
  async #ownedSession(
    did: string,
    name: string,
    uploadId: string,
    options: { remembered?: boolean } = {},
  ): Promise<{ upload: UploadName; session: UploadSession; etag: string }> {
    const upload = parseUploadName(name);
    if (!upload) throw new HoldError('DIGEST_INVALID', 'digest must be an upload name this hold issued');
    const read = await mappingStorageErrors(() => this.#sessions.read(upload, options));
    if (!read || read.session.did !== did || !isUsable(read.session) || read.session.upload_id !== uploadId) throw new HoldError('UPLOAD_UNKNOWN');
    return { upload, session: read.session, etag: read.etag };
  }

  /**
   * Runs a read-modify-write first on the remembered record, which saves a
   * read per PATCH; if that copy was stale (another hold process wrote since),
   * the conditional write or a check refuses it, and the work runs once more
   * on a fresh read.
   */
  async #startingOverIfStale<T>(work: (remembered: boolean) => Promise<T>): Promise<T> {
    try {
      return await work(true);
    } catch (err) {
      if (!(err instanceof HoldError) || (err.code !== 'UPLOAD_STATE_CONFLICT' && err.code !== 'UPLOAD_UNKNOWN')) throw err;
      return work(false);
    }
  }

  async #openSession(did: string, name: string, uploadId: string, kind: UploadSession['kind'], options: { remembered?: boolean } = {}) {
    const owned = await this.#ownedSession(did, name, uploadId, options);
    if (owned.session.kind !== kind) throw new HoldError('UPLOAD_UNKNOWN', `this upload is not a ${kind} upload`);
    if (owned.session.state !== 'open') throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload is already complete');
    return owned;
  }

  /** A record for an upload about to start: no provider upload yet. */
  #newSession(upload: UploadName, did: string, kind: UploadSession['kind'], expected?: Digest, clientState?: Record<string, unknown>): UploadSession {
    const now = this.#now().toISOString();
    return {
      version: 2,
      name: upload.value,
      did,
      kind,
      upload_id: '',
      ...(expected ? { expected_digest: expected.value } : {}),
      ...(clientState ? { client_state: clientState } : {}),
      state: 'starting',
      created_at: now,
      updated_at: now,
      parts: [],
      staged: [],
      size: 0,
    };
  }

  #view(session: UploadSession): UploadView {
    return {
      upload_name: session.name,
      upload_id: session.upload_id,
      state: session.state,
      created_at: session.created_at,
      updated_at: session.updated_at,
      expires_at: this.#expiresAt(session),
      size: session.size,
      ...(session.completed_size !== undefined ? { completed_size: session.completed_size } : {}),
      parts: session.parts,
      staged: session.staged,
      ...(session.client_state ? { client_state: session.client_state } : {}),
    };
  }

  #expiresAt(session: UploadSession): string {
    return new Date(Date.parse(session.updated_at) + this.#uploadTtlMs).toISOString();
  }

  #key(spec: Parameters<typeof storageKey>[0]): string {
    return storageKey(spec, this.#prefix);
  }
}

function view(presigned: { url: string; expiresAt: Date; method: 'PUT' | 'GET' | 'HEAD' }): PresignedUrlView {
  return { url: presigned.url, expires_at: presigned.expiresAt.toISOString(), method: presigned.method };
}

function requireContentDigest(input: string): Digest {
  const digest = parseDigest(input);
  if (!digest) throw new HoldError('DIGEST_INVALID', 'digest must be sha256:<64 hex> or sha512:<128 hex>');
  return digest;
}

function requireBlobRef(input: string) {
  const ref = parseBlobRef(input);
  if (!ref) throw new HoldError('DIGEST_INVALID');
  return ref;
}

function requireUploadId(uploadId: string | undefined): string {
  if (!uploadId) throw new HoldError('INVALID_REQUEST', 'upload_id is required for an upload name');
  return uploadId;
}

function checkClientState(state: Record<string, unknown> | undefined): void {
  if (state && Buffer.byteLength(JSON.stringify(state)) > MAX_CLIENT_STATE_BYTES) {
    throw new HoldError('INVALID_REQUEST', `client_state must be at most ${MAX_CLIENT_STATE_BYTES} bytes of JSON`);
  }
}

/** A single upload from before single uploads were multipart: its bytes came through a PutObject URL. */
function isLegacySingle(session: UploadSession): boolean {
  return session.kind === 'single' && session.upload_id === '';
}

function segmentId(segment: StagedSegment): string {
  return `${segment.offset}:${segment.size}`;
}

/** Recorded parts are all non-final, so each must reach the S3 minimum. */
function checkRecordedParts(parts: readonly SessionPart[], alreadyRecorded: number): void {
  parts.forEach((part, index) => {
    if (part.part_number !== index + 1) {
      throw new HoldError('INVALID_PART', `parts must be recorded in order: expected part ${index + 1}, got ${part.part_number}`);
    }
    if (index >= alreadyRecorded) {
      assertPartNumber(part.part_number);
      if (part.size < MIN_PART_SIZE) {
        throw new HoldError('PART_TOO_SMALL', `part ${part.part_number} is ${part.size} bytes; every part but the last must be at least ${MIN_PART_SIZE} bytes (5 MiB)`);
      }
    }
  });
}

function checkStagedSegments(staged: readonly StagedSegment[], start: number): void {
  let offset = start;
  for (const segment of staged) {
    if (segment.offset !== offset || segment.size < 1) {
      throw new HoldError('INVALID_REQUEST', `staged segments must be contiguous from offset ${start}`);
    }
    offset += segment.size;
  }
}
