import { createHash, type Hash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { parseDigest, type DigestAlgorithm } from '../core/digest.ts';
import { mappingHoldErrors, toDriverError } from './errors.ts';
import type { HoldClient, HoldPart, HoldPartUrl, HoldStagedSegment } from './hold-client.ts';
import type { MemoryBudget } from './memory-budget.ts';
import { MIN_CONFIGURED_PART_SIZE as MIN_PART_SIZE, maxBlobSize, partSizeFor } from './part-size.ts';
import type { Transport } from './transport.ts';
import { DriverError, type BlobWriter, type CommitDescriptor, type Descriptor, type ReadOptions } from './types.ts';
import { encodeWriterId } from './writer-id.ts';
import { MAX_PRESIGNED_PARTS } from '../protocol/limits.ts';

/** What every writer of one driver shares. */
export interface WriterContext {
  readonly did: string;
  readonly hold: HoldClient;
  readonly transport: Transport;
  readonly budget: MemoryBudget;
  readonly maxPartsInFlight: number;
  /** How long a write may wait for the memory budget before failing with UNAVAILABLE. */
  readonly bufferWaitMs: number;
  /** No part grows beyond this (the memory budget). */
  readonly maxPartSize: number;
  /**
   * A first request that ends with 5 MiB up to one part of bytes makes its
   * length the upload's part size, so a client that PATCHes in fixed chunks
   * fills whole parts and nothing is staged. Off where parts must stay equal
   * to the configured size (r2) or should be large (storj segments).
   */
  readonly adoptChunkSize: boolean;
  /** Called when a writer is finished or broken, so caches drop it. */
  readonly retire: (writer: HoldBlobWriter) => void;
}

/** An upload's durable state as the hold reports it. */
export interface UploadSnapshot {
  uploadName: string;
  uploadId: string;
  startedAt: Date;
  parts: readonly HoldPart[];
  staged: readonly HoldStagedSegment[];
  size: number;
  /** Set when the hold has already assembled the parts: only verify and publish remain. */
  completedSize?: number;
  partSize: number;
  equalParts: boolean;
  algorithm: DigestAlgorithm;
  /** Part URLs the hold presigned with this state, for the parts after `parts`. */
  partUrls?: readonly HoldPartUrl[];
  /** When the hold lets this state expire: it moves with every update of the upload's record. */
  expiresAt: string;
}

/** A presigned URL used only while it has at least this long to live. */
const URL_MARGIN_MS = 30_000;
/**
 * A writer's state is trusted only this long before its record expires: from
 * then on the hold's janitor may discard the upload, and clocks may differ.
 */
const STATE_MARGIN_MS = 60_000;

/** How many part URLs to ask the hold for with each answer: as many as may be in flight at once. */
export function presignAhead(ctx: Pick<WriterContext, 'maxPartsInFlight'>): number {
  return Math.min(ctx.maxPartsInFlight, MAX_PRESIGNED_PARTS);
}

type WriterState = 'open' | 'committed' | 'cancelled' | 'failed';

/**
 * A BlobWriter over the hold's multipart API.
 *
 * Bytes fill a part buffer of exactly the part size; a full buffer becomes a
 * part PUT straight to its presigned URL while reading continues, up to
 * `maxPartsInFlight` parts per writer. Buffers are reserved from the shared
 * memory budget before they are filled. `close()` makes everything durable:
 * the tail shorter than a part is PUT as a staged segment, and the hold's
 * session record is updated with the new parts and segments.
 *
 * The sha256 runs on node:crypto while bytes stream. A writer rebuilt from the
 * hold's state (another process, or after eviction) has no running hash and
 * verifies by reading the assembled object back once at commit.
 */
export class HoldBlobWriter implements BlobWriter {
  readonly id: string;
  readonly startedAt: Date;
  readonly #ctx: WriterContext;
  readonly #uploadName: string;
  readonly #uploadId: string;
  #basePartSize: number;
  readonly #equalParts: boolean;
  #maxSize: number;
  /** The part size was adopted from the first chunk; the hold has not recorded it yet. */
  #partSizeAdopted = false;
  /** The next part's URL, asked for while its bytes still arrive. */
  #prefetched: { partNumber: number; url: Promise<string> } | undefined;
  /** Part URLs the hold handed out with its last answer, by part number. */
  #partUrls = new Map<number, HoldPartUrl>();
  /** Bytes the request being read will still yield, when it said (Content-Length). */
  #requestRemaining: number | undefined;
  /** The part being sent while its bytes arrive. */
  #streaming: { partNumber: number; body: PassThrough; etag: Promise<string> } | undefined;
  /** The record's version as of the hold's last answer (see `state`). */
  #recordVersion: string;
  readonly #algorithm: DigestAlgorithm;
  readonly #abort = new AbortController();

  #state: WriterState = 'open';
  #failure: unknown;
  #recorded: HoldPart[];
  readonly #uploaded = new Map<number, HoldPart>();
  readonly #inFlight = new Map<number, Promise<void>>();
  #nextPart: number;
  /** Bytes cut into parts: recorded, uploaded or in flight. */
  #partBytes: number;
  #staged: HoldStagedSegment[];
  #durableSize: number;
  #size: number;
  #buffer: Buffer | undefined;
  #fill = 0;
  /** An idle tail kept between requests, when the budget had room for it. */
  #compact: Buffer | undefined;
  #tailLoaded: boolean;
  #hash: Hash | undefined;
  #finalPart: HoldPart | undefined;
  #closing: Promise<void> | undefined;
  /** The hold already completed the multipart upload (a commit failed after that step). */
  readonly #completed: boolean;
  /** Operations running now; idle memory is only released when there are none. */
  #busy = 0;
  /** Dropped by the cache: free the buffers once idle and durable. */
  #detached = false;
  /** This writer's commit completed the multipart upload: every byte is in the hold's object. */
  #assembled = false;

  constructor(ctx: WriterContext, snapshot: UploadSnapshot, options: { hashFromStart: boolean }) {
    this.#ctx = ctx;
    this.#uploadName = snapshot.uploadName;
    this.#uploadId = snapshot.uploadId;
    this.id = encodeWriterId(snapshot.uploadName, snapshot.uploadId);
    this.startedAt = snapshot.startedAt;
    this.#basePartSize = snapshot.partSize;
    this.#equalParts = snapshot.equalParts;
    this.#maxSize = maxBlobSize(snapshot.partSize, snapshot.equalParts, ctx.maxPartSize);
    this.#algorithm = snapshot.algorithm;
    this.#recorded = [...snapshot.parts];
    this.#nextPart = snapshot.parts.length + 1;
    this.#partBytes = snapshot.parts.reduce((sum, part) => sum + part.size, 0);
    this.#staged = [...snapshot.staged];
    this.#completed = snapshot.completedSize !== undefined;
    this.#durableSize = snapshot.completedSize ?? snapshot.size;
    this.#size = this.#durableSize;
    this.#tailLoaded = this.#completed || snapshot.size === this.#partBytes;
    // A running hash is only trustworthy if it has seen every byte from offset 0.
    this.#hash = !this.#completed && (options.hashFromStart || snapshot.size === 0) ? createHash(this.#algorithm) : undefined;
    this.#keepPartUrls(snapshot.partUrls);
    this.#recordVersion = snapshot.expiresAt;
  }

  get size(): number {
    return this.#size;
  }

  get chunkMinLength(): number {
    return this.#basePartSize;
  }

  /**
   * The durable size and the hold record's expiry, which every update moves:
   * any process that read the same record names it the same. Undefined while
   * this writer holds bytes that are not durable, is busy or done, or its
   * record is near expiry (the janitor may have discarded the upload).
   */
  get state(): string | undefined {
    if (this.#state !== 'open' || this.#completed || this.#closing || this.#busy > 0 || this.#size !== this.#durableSize) return undefined;
    if (Date.parse(this.#recordVersion) - Date.now() < STATE_MARGIN_MS) return undefined;
    return `${this.#durableSize}@${this.#recordVersion}`;
  }

  /** Bytes the hold has recorded as durable. */
  get durableSize(): number {
    return this.#durableSize;
  }

  get uploadName(): string {
    return this.#uploadName;
  }

  /** True when this cached writer still describes the hold's state exactly. */
  matches(snapshot: UploadSnapshot): boolean {
    return (
      snapshot.completedSize === undefined &&
      !this.#completed &&
      this.#state === 'open' &&
      this.#closing === undefined &&
      this.#size === this.#durableSize &&
      snapshot.size === this.#durableSize &&
      snapshot.parts.length === this.#recorded.length &&
      snapshot.staged.length === this.#staged.filter((segment) => segment.offset >= this.#partBytes).length
    );
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.#whileBusy(() => this.#write(chunk));
  }

  async #write(chunk: Uint8Array): Promise<void> {
    this.#assertOpen();
    if (chunk.length === 0) return;
    if (this.#completed) throw new DriverError('BLOB_UPLOAD_INVALID', 'the upload is already assembled; commit it');
    if (this.#size + chunk.length > this.#maxSize) {
      throw new DriverError('BLOB_TOO_LARGE', `this upload is limited to ${this.#maxSize} bytes by its part size and provider profile`);
    }
    if (!this.#tailLoaded) await this.#loadTail();
    if (this.#finalPart) this.#discardFinalPart();
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.#buffer) await this.#allocateBuffer();
      const buffer = this.#buffer as Buffer;
      if (!this.#streaming) this.#streamIfFilled(buffer, chunk.length - offset);
      const take = Math.min(buffer.length - this.#fill, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      buffer.set(piece, this.#fill);
      this.#streaming?.body.write(buffer.subarray(this.#fill, this.#fill + take));
      this.#hash?.update(piece);
      this.#fill += take;
      this.#size += take;
      offset += take;
      if (this.#requestRemaining !== undefined) this.#requestRemaining -= take;
      if (this.#fill === buffer.length) await this.#cutPart();
      else if (this.#fill >= MIN_PART_SIZE) this.#prefetchPartUrl();
    }
  }

  async readFrom(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: ReadOptions = {}): Promise<number> {
    let total = 0;
    this.#requestRemaining = options.length;
    try {
      for await (const chunk of source) {
        await this.write(chunk);
        total += chunk.length;
      }
    } finally {
      this.#requestRemaining = undefined;
      this.#abandonStreaming();
    }
    return total;
  }

  /**
   * Starts the PUT of the part being filled, if what this request has yet to
   * send fills it and its URL is at hand: the part then travels while it
   * arrives instead of after. The bytes stay in the buffer, so a PUT that
   * fails is sent again from there (`#cutPart`).
   */
  #streamIfFilled(buffer: Buffer, inChunk: number): void {
    const remaining = this.#requestRemaining ?? inChunk;
    if (remaining < buffer.length - this.#fill || this.#inFlight.size >= this.#ctx.maxPartsInFlight) return;
    const partNumber = this.#nextPart;
    const url = this.#takePartUrl(partNumber);
    if (!url) return;
    const body = new PassThrough();
    body.on('error', () => {});
    const etag = this.#ctx.transport.putStreaming(url, body, buffer.length, this.#abort.signal);
    etag.catch(() => {});
    if (this.#fill > 0) body.write(buffer.subarray(0, this.#fill));
    this.#streaming = { partNumber, body, etag };
  }

  /** Hands the part buffer back only once a PUT still reading it is over. */
  #recycleWhenSent(sent: Promise<string>): void {
    const buffer = this.#buffer as Buffer;
    this.#buffer = undefined;
    this.#fill = 0;
    void sent.catch(() => {}).finally(() => this.#ctx.budget.recycle(buffer, this.#ctx.did));
  }

  /** The request ended before the part filled: that PUT can never complete, and the bytes stay the tail. */
  #abandonStreaming(): void {
    this.#streaming?.body.destroy(new Error('the request ended before the part was complete'));
    this.#streaming = undefined;
  }

  close(): Promise<void> {
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
    if (!this.#tailLoaded) await this.#loadTail();
    await this.#drain();
    if (descriptor.size !== undefined && descriptor.size !== this.#size) {
      await this.cancel().catch(() => {});
      throw new DriverError('SIZE_INVALID', `the upload holds ${this.#size} bytes, not ${descriptor.size}`);
    }
    let verified = false;
    if (this.#hash && digest.algorithm === this.#algorithm) {
      const actual = `${this.#algorithm}:${this.#hash.copy().digest('hex')}`;
      if (actual !== digest.value) {
        await this.cancel().catch(() => {});
        throw new DriverError('DIGEST_INVALID', `the uploaded content hashes to ${actual}, not ${digest.value}`);
      }
      verified = true;
    }
    const size = this.#size;
    let completing: HoldPart[] | undefined;
    if (!this.#completed) {
      const parts = await this.#finishParts();
      if (verified) {
        // Verified bytes need no reading back: the hold completes and publishes them in one call.
        completing = parts;
      } else {
        await mappingHoldErrors(() => this.#ctx.hold.completeMultipart(this.#ctx.did, this.#uploadName, this.#uploadId, parts));
        this.#assembled = true;
      }
    }
    if (!verified) {
      const actual = await this.#hashStoredObject(digest.algorithm);
      if (actual !== digest.value) {
        await this.cancel().catch(() => {});
        throw new DriverError('DIGEST_INVALID', `the uploaded content hashes to ${actual}, not ${digest.value}`);
      }
    }
    const existed = await this.#publish(digest.value, size, completing);
    this.#finish('committed');
    return { digest: digest.value, size, existed, ...(descriptor.mediaType ? { mediaType: descriptor.mediaType } : {}) };
  }

  async cancel(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'cancelled') return;
    this.#state = 'cancelled';
    this.#abort.abort(new DriverError('BLOB_UPLOAD_UNKNOWN', 'the upload was cancelled'));
    await Promise.allSettled(this.#inFlight.values());
    try {
      await this.#ctx.hold.abortMultipart(this.#ctx.did, this.#uploadName, this.#uploadId);
    } catch (err) {
      if ((err as { code?: string }).code !== 'UPLOAD_UNKNOWN') throw toDriverError(err);
    } finally {
      this.#finish('cancelled');
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
    if (!this.#detached || this.#busy > 0 || this.#inFlight.size > 0) return;
    if (this.#size !== this.#durableSize && !this.#assembled) return;
    this.#freeMemory();
    this.#tailLoaded = this.#completed || this.#size === this.#partBytes;
  }

  /** Gives back the part buffer and the idle tail; a failed or finished writer needs neither. */
  #freeMemory(): void {
    this.#abandonStreaming();
    if (this.#buffer) {
      this.#ctx.budget.recycle(this.#buffer, this.#ctx.did);
      this.#buffer = undefined;
      this.#fill = 0;
    }
    if (this.#compact) {
      this.#ctx.budget.releaseIdle(this.#compact.length, this.#ctx.did);
      this.#compact = undefined;
    }
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
    if (this.#state === 'failed') throw new DriverError('UNAVAILABLE', 'this writer failed; resume the upload to continue from its durable state', { cause: this.#failure });
    if (this.#state !== 'open') throw new DriverError('BLOB_UPLOAD_UNKNOWN', `the upload is ${this.#state}`);
    if (this.#failure) this.#fail(this.#failure);
  }

  #fail(err: unknown): never {
    this.#state = 'failed';
    this.#failure = err;
    this.#freeMemory();
    this.#ctx.retire(this);
    throw toDriverError(err);
  }

  async #allocateBuffer(): Promise<void> {
    const partSize = partSizeFor(this.#nextPart, this.#basePartSize, this.#equalParts, this.#ctx.maxPartSize);
    this.#buffer = await mappingHoldErrors(() => this.#ctx.budget.allocate(partSize, { tenant: this.#ctx.did, timeoutMs: this.#ctx.bufferWaitMs }));
    this.#fill = 0;
    if (this.#compact) {
      this.#buffer.set(this.#compact, 0);
      this.#fill = this.#compact.length;
      this.#ctx.budget.releaseIdle(this.#compact.length, this.#ctx.did);
      this.#compact = undefined;
    }
  }

  /** Sends the buffer's first `length` bytes as the next part. */
  async #cutPart(length = this.#fill): Promise<void> {
    const whole = length === (this.#buffer as Buffer).length;
    // A streamed PUT gets its end at once, before any wait: S3 is reading it.
    const streaming = whole && this.#streaming?.partNumber === this.#nextPart ? this.#streaming : undefined;
    if (streaming) {
      this.#streaming = undefined;
      streaming.body.end();
    } else {
      this.#abandonStreaming();
    }
    while (this.#inFlight.size >= this.#ctx.maxPartsInFlight) await Promise.race(this.#inFlight.values());
    if (this.#failure) {
      if (streaming) this.#recycleWhenSent(streaming.etag);
      this.#fail(this.#failure);
    }
    const buffer = this.#buffer as Buffer;
    const body = whole ? buffer : buffer.subarray(0, length);
    const partNumber = this.#nextPart++;
    this.#buffer = undefined;
    this.#fill = 0;
    this.#partBytes += body.length;
    const task = (streaming ? streaming.etag.catch(() => this.#putPart(partNumber, body)) : this.#putPart(partNumber, body))
      .then((etag) => {
        this.#uploaded.set(partNumber, { part_number: partNumber, etag, size: body.length });
      })
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => {
        this.#ctx.budget.recycle(buffer, this.#ctx.did);
        this.#inFlight.delete(partNumber);
      });
    this.#inFlight.set(partNumber, task);
  }

  /**
   * Asks for the URL of the part being filled once it holds enough bytes to
   * become a part, so the PUT need not wait for a hold round trip. A failure
   * here is ignored: the PUT asks again and reports it.
   */
  #prefetchPartUrl(): void {
    const partNumber = this.#nextPart;
    if (this.#prefetched?.partNumber === partNumber || this.#partUrls.has(partNumber) || this.#streaming?.partNumber === partNumber) return;
    const url = this.#partUrl(partNumber);
    url.catch(() => {});
    this.#prefetched = { partNumber, url };
  }

  #partUrl(partNumber: number): Promise<string> {
    const { hold, did } = this.#ctx;
    return mappingHoldErrors(() => hold.partPresignedUrl(did, this.#uploadName, this.#uploadId, partNumber)).then((view) => view.url);
  }

  /** URLs from a hold answer replace the ones kept from the previous answer. */
  #keepPartUrls(urls: readonly HoldPartUrl[] | undefined): void {
    this.#partUrls = new Map((urls ?? []).map((url) => [url.part_number, url]));
  }

  /** A URL the hold already handed out for this part, if it has time left. */
  #takePartUrl(partNumber: number): string | undefined {
    const kept = this.#partUrls.get(partNumber);
    this.#partUrls.delete(partNumber);
    return kept && Date.parse(kept.expires_at) - Date.now() > URL_MARGIN_MS ? kept.url : undefined;
  }

  #putPart(partNumber: number, body: Uint8Array): Promise<string> {
    let prefetched = this.#prefetched?.partNumber === partNumber ? this.#prefetched.url : undefined;
    if (prefetched) this.#prefetched = undefined;
    let kept = this.#takePartUrl(partNumber);
    return this.#ctx.transport.put(
      async (fresh) => {
        const handedOut = kept;
        kept = undefined;
        if (handedOut && !fresh) return handedOut;
        const early = prefetched;
        prefetched = undefined;
        if (early && !fresh) {
          const url = await early.catch(() => undefined);
          if (url) return url;
        }
        return this.#partUrl(partNumber);
      },
      body,
      'part',
      this.#abort.signal,
    );
  }

  /** Waits for every part in flight; rethrows the first failure. */
  async #drain(): Promise<void> {
    await Promise.all(this.#inFlight.values());
    if (this.#failure) this.#fail(this.#failure);
  }

  async #persist(): Promise<void> {
    if (this.#mayAdoptChunkSize()) await this.#adoptChunkSize();
    await this.#drain();
    if (this.#size !== this.#durableSize) {
      try {
        await this.#recordProgress();
      } catch (err) {
        this.#fail(err);
      }
    }
    this.#compactTail();
  }

  #mayAdoptChunkSize(): boolean {
    return (
      this.#ctx.adoptChunkSize &&
      !this.#equalParts &&
      !this.#completed &&
      this.#nextPart === 1 &&
      this.#durableSize === 0 &&
      this.#staged.length === 0 &&
      this.#buffer !== undefined &&
      this.#fill >= MIN_PART_SIZE &&
      this.#fill < this.#basePartSize
    );
  }

  async #adoptChunkSize(): Promise<void> {
    this.#basePartSize = this.#fill;
    this.#maxSize = maxBlobSize(this.#basePartSize, this.#equalParts, this.#ctx.maxPartSize);
    this.#partSizeAdopted = true;
    await this.#cutPart(this.#fill);
  }

  async #recordProgress(): Promise<void> {
    const { hold, did, transport } = this.#ctx;
    const staged = this.#staged.filter((segment) => segment.offset >= this.#partBytes);
    const stagedEnd = staged.reduce((end, segment) => end + segment.size, this.#partBytes);
    if (this.#size > stagedEnd) {
      const bytes = this.#tailBytes().subarray(stagedEnd - this.#partBytes);
      const offset = stagedEnd;
      await transport.put(
        async () => (await mappingHoldErrors(() => hold.putPresignedUrl(did, this.#uploadName, { uploadId: this.#uploadId, offset }))).url,
        bytes,
        'staged',
        this.#abort.signal,
      );
      staged.push({ offset, size: bytes.length });
    }
    const parts = [...this.#uploaded.values()].sort((a, b) => a.part_number - b.part_number);
    const clientState = this.#partSizeAdopted ? { client_state: { part_size: this.#basePartSize, equal_parts: this.#equalParts, algorithm: this.#algorithm } } : {};
    const view = await this.#sendProgress(
      { base_size: this.#durableSize, parts, staged, ...clientState, presign_parts: presignAhead(this.#ctx) },
      this.#recorded.length + parts.length,
    );
    this.#partSizeAdopted = false;
    this.#keepPartUrls(view.part_urls);
    if (view.size !== this.#size) throw new DriverError('INTERNAL', `the hold recorded ${view.size} bytes, expected ${this.#size}`);
    this.#recorded.push(...parts);
    this.#uploaded.clear();
    this.#staged = staged;
    this.#durableSize = view.size;
    this.#recordVersion = view.expires_at;
  }

  /**
   * Records progress. A conflict can mean our own earlier attempt landed and
   * only its answer was lost; if the hold already holds exactly this state,
   * that is success.
   */
  async #sendProgress(
    progress: { base_size: number; parts: HoldPart[]; staged: HoldStagedSegment[]; client_state?: Record<string, unknown>; presign_parts?: number },
    partCount: number,
  ) {
    const { hold, did } = this.#ctx;
    try {
      return await hold.uploadProgress(did, this.#uploadName, this.#uploadId, progress);
    } catch (err) {
      if ((err as { code?: string }).code !== 'UPLOAD_STATE_CONFLICT') throw toDriverError(err);
      const status = await mappingHoldErrors(() => hold.uploadStatus(did, this.#uploadName, this.#uploadId));
      if (status.size === this.#size && status.parts.length === partCount) return status;
      throw toDriverError(err);
    }
  }

  /** The last part (the tail, possibly empty), then every part in order. */
  async #finishParts(): Promise<HoldPart[]> {
    const tail = this.#tailBytes();
    const anyPart = this.#recorded.length + this.#uploaded.size > 0;
    if (!this.#finalPart && (tail.length > 0 || !anyPart)) {
      const partNumber = this.#nextPart++;
      const etag = await this.#putPart(partNumber, tail);
      this.#finalPart = { part_number: partNumber, etag, size: tail.length };
    }
    const parts = [...this.#recorded, ...this.#uploaded.values()];
    if (this.#finalPart) parts.push(this.#finalPart);
    return parts.sort((a, b) => a.part_number - b.part_number);
  }

  /** New bytes after a failed commit: the final part is no longer final. */
  #discardFinalPart(): void {
    this.#nextPart = (this.#finalPart as HoldPart).part_number;
    this.#finalPart = undefined;
  }

  async #hashStoredObject(algorithm: DigestAlgorithm): Promise<string> {
    const { hold, did, transport } = this.#ctx;
    const hash = createHash(algorithm);
    const stream = await transport.getStream(async () =>
      (await mappingHoldErrors(() => hold.getPresignedUrl(did, this.#uploadName, { uploadId: this.#uploadId }))).url,
    );
    for await (const chunk of stream) hash.update(chunk as Buffer);
    return `${algorithm}:${hash.digest('hex')}`;
  }

  /** Moves the upload to its digest, completing it first with `parts`; resolves whether the blob was already there. */
  async #publish(digest: string, size: number, parts: readonly HoldPart[] | undefined): Promise<boolean> {
    const { hold, did } = this.#ctx;
    try {
      return (await hold.move(did, this.#uploadName, digest, { size, ...(parts ? { parts } : {}) })).existed;
    } catch (err) {
      // A retried move whose first attempt succeeded finds the upload gone.
      if ((err as { code?: string }).code !== 'UPLOAD_UNKNOWN') throw toDriverError(err);
      const existing = await mappingHoldErrors(() => hold.stat(did, digest));
      if (existing.size !== size) throw new DriverError('INTERNAL', 'the upload vanished before it was published');
      return true;
    }
  }

  async #loadTail(): Promise<void> {
    const { hold, did, transport } = this.#ctx;
    // Only durable bytes can be fetched again; anything else would fill the gap with stale memory.
    if (this.#size !== this.#durableSize) throw new DriverError('INTERNAL', `the tail of upload ${this.id} is not durable and was lost`);
    const staged = this.#staged.filter((segment) => segment.offset >= this.#partBytes);
    await this.#allocateBuffer();
    const buffer = this.#buffer as Buffer;
    try {
      for (const segment of staged) {
        const bytes = await transport.getBytes(
          async () =>
            (await mappingHoldErrors(() => hold.getPresignedUrl(did, this.#uploadName, { uploadId: this.#uploadId, offset: segment.offset }))).url,
          segment.size,
          this.#abort.signal,
        );
        buffer.set(bytes, segment.offset - this.#partBytes);
      }
    } catch (err) {
      // Nothing half-loaded may stay behind: the next attempt starts over.
      this.#ctx.budget.recycle(buffer, this.#ctx.did);
      this.#buffer = undefined;
      this.#fill = 0;
      throw err;
    }
    this.#fill = this.#size - this.#partBytes;
    this.#tailLoaded = true;
  }

  #tailBytes(): Buffer {
    if (this.#buffer) return this.#buffer.subarray(0, this.#fill);
    return this.#compact ?? Buffer.alloc(0);
  }

  /** After a request: keep a small copy of the tail if the budget allows, free the part buffer. */
  #compactTail(): void {
    if (!this.#buffer) return;
    const buffer = this.#buffer;
    const tail = buffer.subarray(0, this.#fill);
    this.#buffer = undefined;
    this.#fill = 0;
    if (tail.length > 0 && this.#ctx.budget.tryAcquire(tail.length, this.#ctx.did)) {
      this.#compact = Buffer.from(tail);
    } else {
      this.#tailLoaded = this.#size === this.#partBytes;
    }
    this.#ctx.budget.recycle(buffer, this.#ctx.did);
  }

  #finish(state: WriterState): void {
    this.#state = state;
    this.#hash = undefined;
    this.#freeMemory();
    this.#ctx.retire(this);
  }
}
