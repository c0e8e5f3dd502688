import { createHash, type Hash } from 'node:crypto';
import { parseDigest, type DigestAlgorithm } from '../core/digest.ts';
import { verifyAndPublish } from './commit.ts';
import { isHoldError, toDriverError } from './errors.ts';
import { MIN_CONFIGURED_PART_SIZE as MIN_PART_SIZE, PartSizing } from './part-size.ts';
import { PartPipeline } from './part-pipeline.ts';
import { PartUrls } from './part-urls.ts';
import { UploadRecord } from './progress.ts';
import { samePartList, sameStagedSegments } from '../protocol/parts.ts';
import { Tail } from './tail.ts';
import { DriverError, type BlobWriter, type CommitDescriptor, type Descriptor, type ReadOptions } from './types.ts';
import type { UploadRef, UploadSnapshot, WriterContext } from './writer-context.ts';
import { encodeWriterId } from './writer-id.ts';

/**
 * A writer's state is trusted only this long before its record expires: from
 * then on the hold's janitor may discard the upload, and clocks may differ.
 */
const STATE_MARGIN_MS = 60_000;

type WriterState = 'open' | 'committed' | 'cancelled' | 'failed';

/**
 * A BlobWriter over the hold's multipart API.
 *
 * Bytes fill a part buffer of exactly the part size (`Tail`); a full buffer
 * becomes a part PUT straight to its presigned URL while reading continues,
 * up to `maxPartsInFlight` parts per writer (`PartPipeline`, with URLs from
 * `PartUrls` and sizes from `PartSizing`). Buffers are reserved from the
 * shared memory budget before they are filled. `close()` makes everything
 * durable: the tail shorter than a part is PUT as a staged segment, and the
 * hold's session record is updated with the new parts and segments, unless
 * the request ended on a part boundary (`UploadRecord`). `commit()` verifies
 * and publishes (`commit.ts`). This class is the state machine that composes
 * them.
 *
 * The sha256 runs on node:crypto while bytes stream. A writer rebuilt from the
 * hold's state (another process, or after eviction) has no running hash and
 * verifies by reading the assembled object back once at commit.
 */
export class HoldBlobWriter implements BlobWriter {
  readonly id: string;
  readonly startedAt: Date;
  readonly #ctx: WriterContext;
  readonly #upload: UploadRef;
  readonly #sizing: PartSizing;
  /** Bytes the request being read will still yield, when it said (Content-Length). */
  #requestRemaining: number | undefined;
  /** The last request read did not say its length. */
  #lengthUnknown = false;
  /**
   * While a request of unknown length is read: whether it has filled a whole
   * part yet. One that has is most likely a whole blob (Docker sends one in a
   * single PATCH), so each later part is sent while its bytes arrive; if the
   * request ends first, that PUT is dropped and the bytes stay the tail.
   */
  #unknownLength: { filledPart: boolean } | undefined;
  readonly #algorithm: DigestAlgorithm;
  readonly #abort = new AbortController();
  readonly #urls: PartUrls;
  readonly #tail: Tail;
  readonly #parts: PartPipeline;
  readonly #record: UploadRecord;

  #state: WriterState = 'open';
  #size: number;
  #hash: Hash | undefined;
  #closing: Promise<void> | undefined;
  /** The hold already completed the multipart upload (a commit failed after that step). */
  readonly #completed: boolean;
  /** Operations running now; idle memory is only released when there are none. */
  #busy = 0;
  /** Dropped by the cache: free the buffers once idle and durable. */
  #detached = false;
  /** This writer's commit completed the multipart upload: every byte is in the hold's object. */
  #assembled = false;
  /** The writer epoch it writes as (see `UploadFence`); undefined for a writer that only reports state. */
  #epoch: number | undefined;

  constructor(ctx: WriterContext, snapshot: UploadSnapshot, options: { hashFromStart: boolean; epoch?: number }) {
    this.#ctx = ctx;
    this.#upload = { uploadName: snapshot.uploadName, uploadId: snapshot.uploadId };
    this.id = encodeWriterId(snapshot.uploadName, snapshot.uploadId);
    this.startedAt = snapshot.startedAt;
    this.#sizing = new PartSizing(snapshot.partSize, snapshot.equalParts, { cap: ctx.maxPartSize, adoptChunkSize: ctx.adoptChunkSize });
    this.#algorithm = snapshot.algorithm;
    this.#completed = snapshot.completedSize !== undefined;
    this.#record = new UploadRecord(ctx, this.#upload, { staged: snapshot.staged, durableSize: snapshot.completedSize ?? snapshot.size, expiresAt: snapshot.expiresAt });
    this.#size = this.#record.durableSize;
    this.#urls = new PartUrls(ctx, this.#upload, snapshot.partUrls, () => this.#epoch);
    const partBytes = snapshot.parts.reduce((sum, part) => sum + part.size, 0);
    this.#tail = new Tail(ctx, this.#completed || snapshot.size === partBytes);
    this.#parts = new PartPipeline(ctx, {
      recorded: snapshot.parts,
      tail: this.#tail,
      urls: this.#urls,
      signal: this.#abort.signal,
      fail: (err) => this.#fail(err),
      uploadName: snapshot.uploadName,
    });
    // A running hash is only trustworthy if it has seen every byte from offset 0, and no writer that lost the upload may still PUT parts.
    this.#hash = !this.#completed && !snapshot.takenOver && (options.hashFromStart || snapshot.size === 0) ? createHash(this.#algorithm) : undefined;
    this.#epoch = options.epoch;
  }

  /** True when this writer wrote as `epoch - 1`: no other request has held the upload since it did. */
  heldEpochBefore(epoch: number): boolean {
    return this.#epoch !== undefined && this.#epoch === epoch - 1;
  }

  /** Writes from now on as the holder of `fence` (when given). */
  holding(fence: { readonly epoch: number } | undefined): this {
    if (fence) this.#epoch = fence.epoch;
    return this;
  }

  get size(): number {
    return this.#size;
  }

  get chunkMinLength(): number {
    return this.#sizing.base;
  }

  /**
   * The durable size and the hold record's expiry, which every update moves:
   * any process that read the same record names it the same. Undefined while
   * this writer holds bytes that are not durable, is busy or done, or its
   * record is near expiry (the janitor may have discarded the upload).
   */
  get state(): string | undefined {
    if (this.#state !== 'open' || this.#completed || this.#closing || this.#busy > 0 || this.#size !== this.#record.durableSize) return undefined;
    if (Date.parse(this.#record.version) - Date.now() < STATE_MARGIN_MS) return undefined;
    return `${this.#record.durableSize}@${this.#record.version}`;
  }

  /** Bytes the hold has recorded as durable. */
  get durableSize(): number {
    return this.#record.durableSize;
  }

  get uploadName(): string {
    return this.#upload.uploadName;
  }

  /**
   * True when this cached writer still describes the hold's state exactly,
   * the parts it left unrecorded included; it then takes the hold's record
   * of them.
   */
  syncWith(snapshot: UploadSnapshot): boolean {
    const unrecorded = this.#parts.unrecorded();
    const same =
      snapshot.completedSize === undefined &&
      !this.#completed &&
      this.#state === 'open' &&
      this.#closing === undefined &&
      this.#size === this.#record.durableSize &&
      snapshot.size === this.#record.durableSize &&
      samePartList(snapshot.parts, [...this.#parts.recorded, ...unrecorded]) &&
      sameStagedSegments(snapshot.staged, this.#record.staged.filter((segment) => segment.offset >= this.#parts.partBytes));
    if (!same) return false;
    this.#parts.markRecorded(unrecorded);
    this.#record.synced(snapshot);
    this.#urls.keep(snapshot.partUrls);
    return true;
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#whileBusy(() => this.#write(chunk));
  }

  async #write(chunk: Uint8Array): Promise<void> {
    this.#assertOpen();
    if (chunk.length === 0) return;
    if (this.#completed) throw new DriverError('BLOB_UPLOAD_INVALID', 'the upload is already assembled; commit it');
    if (this.#size + chunk.length > this.#sizing.maxSize) {
      throw new DriverError('BLOB_TOO_LARGE', `this upload is limited to ${this.#sizing.maxSize} bytes by its part size and provider profile`);
    }
    if (!this.#tail.loaded) await this.#loadTail();
    this.#parts.reopen();
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.#tail.buffer) await this.#allocateBuffer();
      const buffer = this.#tail.buffer as Buffer;
      this.#parts.streamIfFilled(this.#requestRemaining ?? (this.#unknownLength?.filledPart ? Number.POSITIVE_INFINITY : chunk.length - offset));
      const take = Math.min(buffer.length - this.#tail.fill, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      this.#parts.stream(this.#tail.append(piece));
      this.#hash?.update(piece);
      this.#size += take;
      offset += take;
      if (this.#requestRemaining !== undefined) this.#requestRemaining -= take;
      if (this.#tail.fill === buffer.length) {
        await this.#parts.cut();
        if (this.#unknownLength) this.#unknownLength.filledPart = true;
      } else if (this.#tail.fill >= MIN_PART_SIZE) this.#parts.prefetchPartUrl();
    }
  }

  async readFrom(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: ReadOptions = {}): Promise<number> {
    let total = 0;
    this.#requestRemaining = options.length;
    this.#lengthUnknown = options.length === undefined;
    this.#unknownLength = this.#lengthUnknown ? { filledPart: false } : undefined;
    try {
      for await (const chunk of source) {
        await this.write(chunk);
        total += chunk.length;
      }
    } finally {
      this.#requestRemaining = undefined;
      this.#unknownLength = undefined;
      this.#parts.abandonStreaming();
    }
    return total;
  }

  close(): Promise<void> {
    if (this.#state === 'failed') return this.#parts.settled().then(() => undefined);
    if (this.#state !== 'open' || this.#completed) return Promise.resolve();
    this.#closing ??= this.#whileBusy(() => this.#persist()).finally(() => {
      this.#closing = undefined;
    });
    return this.#closing;
  }

  commit(descriptor: CommitDescriptor): Promise<Descriptor> {
    return this.#whileBusy(async () => {
      try {
        return await this.#commit(descriptor);
      } catch (err) {
        // A commit that failed part-way stays retryable; its buffer goes back to the budget.
        if (this.#state === 'open') this.#compactTail();
        throw err;
      }
    });
  }

  async #commit(descriptor: CommitDescriptor): Promise<Descriptor> {
    this.#assertOpen();
    const digest = parseDigest(descriptor.digest);
    if (!digest) throw new DriverError('DIGEST_INVALID', `${descriptor.digest} is not a valid digest`);
    if (!this.#tail.loaded) await this.#loadTail();
    await this.#drain();
    const size = this.#size;
    const existed = await verifyAndPublish(this.#ctx, this.#upload, {
      digest,
      size,
      expectedSize: descriptor.size,
      runningDigest: this.#hash && digest.algorithm === this.#algorithm ? `${this.#algorithm}:${this.#hash.copy().digest('hex')}` : undefined,
      parts: this.#completed ? undefined : { pipeline: this.#parts, tail: this.#tail.bytes() },
      epoch: this.#epoch,
      reject: () => this.cancel().catch(() => {}),
      assembled: () => {
        this.#assembled = true;
      },
    });
    this.#finish('committed');
    return { digest: digest.value, size, existed, ...(descriptor.mediaType ? { mediaType: descriptor.mediaType } : {}) };
  }

  async cancel(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'cancelled') return;
    this.#state = 'cancelled';
    this.#abort.abort(new DriverError('BLOB_UPLOAD_UNKNOWN', 'the upload was cancelled'));
    await this.#parts.settled();
    try {
      await this.#ctx.hold.abortMultipart(this.#ctx.did, this.#upload.uploadName, this.#upload.uploadId, this.#epoch);
    } catch (err) {
      // Gone already, or being published by another request: the hold's janitor removes what that leaves.
      if (!isHoldError(err, 'UPLOAD_UNKNOWN', 'UPLOAD_STATE_CONFLICT')) throw toDriverError(err);
    } finally {
      this.#finish('cancelled');
    }
  }

  abandon(reason: Error): void {
    if (this.#state !== 'open') return;
    try {
      this.#fail(reason);
    } catch {
      // `#fail` throws what it records; the caller knows why it abandons.
    }
  }

  /**
   * The cache let go of this writer (eviction, or a fresher writer for the
   * same upload). Its buffers go back to the budget as soon as nothing is
   * using them and every byte in them is durable at the hold; until then a
   * request still writing through it keeps them. If the writer is used again
   * later, its tail is fetched from the staged segments.
   */
  releaseIdleMemory(): void {
    this.#detached = true;
    this.#releaseIfIdle();
  }

  #releaseIfIdle(): void {
    if (!this.#detached || this.#busy > 0 || this.#parts.inFlight > 0) return;
    if (this.#size !== this.#record.durableSize && !this.#assembled) return;
    this.#parts.abandonStreaming();
    this.#tail.letGo({ remember: this.#hash !== undefined, nothingToLoad: this.#completed || this.#size === this.#parts.partBytes });
  }

  /** Gives back the part buffer and the idle tail; a failed or finished writer needs neither. */
  #freeMemory(): void {
    this.#parts.abandonStreaming();
    this.#tail.free();
  }

  async #whileBusy<T>(work: () => Promise<T>): Promise<T> {
    this.#busy++;
    try {
      return await work();
    } finally {
      this.#busy--;
      this.#releaseIfIdle();
    }
  }

  // --- internals ---

  #assertOpen(): void {
    if (this.#state === 'failed') throw new DriverError('UNAVAILABLE', 'this writer failed; resume the upload to continue from its durable state', { cause: this.#parts.failure });
    if (this.#state !== 'open') throw new DriverError('BLOB_UPLOAD_UNKNOWN', `the upload is ${this.#state}`);
    if (this.#parts.failure) this.#fail(this.#parts.failure);
  }

  #fail(err: unknown): never {
    this.#state = 'failed';
    this.#parts.halt(err);
    // Parts still in flight stop; `close()` waits until they have, so the status a client asks next is final.
    this.#abort.abort(err);
    this.#freeMemory();
    this.#ctx.retire(this);
    throw toDriverError(err);
  }

  /** A part buffer for the next part, at the size the part-size policy gives it. */
  #allocateBuffer(): Promise<void> {
    return this.#tail.allocate(this.#sizing.forPart(this.#parts.nextPart));
  }

  /** Waits for every part in flight; rethrows the first failure. */
  async #drain(): Promise<void> {
    await this.#parts.sent();
    if (this.#parts.failure) this.#fail(this.#parts.failure);
  }

  async #persist(): Promise<void> {
    if (this.#mayAdoptChunkSize()) await this.#adoptChunkSize();
    await this.#drain();
    if (this.#size !== this.#record.durableSize) {
      const tail = this.#tail.bytes();
      try {
        await Promise.all([
          this.#record.record({ writer: this, parts: this.#parts, tail, sizing: this.#sizing, urls: this.#urls, algorithm: this.#algorithm, epoch: this.#epoch }, this.#abort.signal),
          // A request of unknown length is how Docker sends a whole blob: its tail is most likely the last part.
          this.#lengthUnknown ? this.#parts.sendFinal(tail) : undefined,
        ]);
      } catch (err) {
        this.#fail(err);
      }
    }
    this.#compactTail();
  }

  #mayAdoptChunkSize(): boolean {
    return (
      !this.#completed &&
      this.#parts.nextPart === 1 &&
      this.#record.durableSize === 0 &&
      this.#record.staged.length === 0 &&
      this.#tail.buffer !== undefined &&
      this.#sizing.mayAdopt(this.#tail.fill)
    );
  }

  async #adoptChunkSize(): Promise<void> {
    this.#sizing.adopt(this.#tail.fill);
    await this.#parts.cut(this.#tail.fill);
  }

  async #loadTail(): Promise<void> {
    // Only durable bytes can be fetched again; anything else would fill the gap with stale memory.
    if (this.#size !== this.#record.durableSize) throw new DriverError('INTERNAL', `the tail of upload ${this.id} is not durable and was lost`);
    const at = { partBytes: this.#parts.partBytes, size: this.#size, partSize: this.#sizing.forPart(this.#parts.nextPart) };
    // Bytes this writer hashed come back from storage: if they are not the same bytes, its hash no longer describes the upload.
    if (!(await this.#tail.load(this.#upload, this.#record.staged, at, this.#abort.signal))) this.#hash = undefined;
  }

  /** After a request: keep a small copy of the tail if the budget allows, free the part buffer. */
  #compactTail(): void {
    this.#tail.compact({ remember: this.#hash !== undefined });
  }

  #finish(state: WriterState): void {
    this.#state = state;
    this.#hash = undefined;
    this.#freeMemory();
    this.#ctx.retire(this);
  }
}
