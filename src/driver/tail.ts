import { createHash } from 'node:crypto';
import { mappingHoldErrors } from './errors.ts';
import type { HoldStagedSegment } from '../protocol/hold-api.ts';
import type { UploadRef, WriterContext } from './writer-context.ts';

/**
 * A writer's bytes after its last part: in the part buffer while a request
 * fills it, in a small compact copy between requests when the memory budget
 * has room, or else only at the hold as staged segments, fetched again when
 * the upload continues. Buffers come from the driver's shared memory budget
 * and go back to it.
 */
export class Tail {
  readonly #ctx: Pick<WriterContext, 'did' | 'hold' | 'transport' | 'budget' | 'bufferWaitMs'>;
  #buffer: Buffer | undefined;
  #fill = 0;
  /** An idle tail kept between requests, when the budget had room for it. */
  #compact: Buffer | undefined;
  /** The tail is in memory (or empty); otherwise it is only in the staged segments. */
  #loaded: boolean;
  /** The sha256 and length of the tail that last left memory, when asked to remember it. */
  #left: { digest: string; length: number } | undefined;

  constructor(ctx: Pick<WriterContext, 'did' | 'hold' | 'transport' | 'budget' | 'bufferWaitMs'>, loaded: boolean) {
    this.#ctx = ctx;
    this.#loaded = loaded;
  }

  /** The tail is in memory (or empty); otherwise `load` must fetch it from the staged segments first. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** The part buffer being filled, if there is one. */
  get buffer(): Buffer | undefined {
    return this.#buffer;
  }

  /** Bytes in the part buffer. */
  get fill(): number {
    return this.#fill;
  }

  /** Reserves a part buffer of `partSize` bytes from the budget; the compact tail moves into it. */
  async allocate(partSize: number): Promise<void> {
    this.#buffer = await mappingHoldErrors(() => this.#ctx.budget.allocate(partSize, { tenant: this.#ctx.did, timeoutMs: this.#ctx.bufferWaitMs }));
    this.#fill = 0;
    if (this.#compact) {
      this.#buffer.set(this.#compact, 0);
      this.#fill = this.#compact.length;
      this.#ctx.budget.releaseIdle(this.#compact.length, this.#ctx.did);
      this.#compact = undefined;
    }
  }

  /** Copies `piece` into the part buffer after its bytes; returns the copy, a view of the buffer. */
  append(piece: Uint8Array): Buffer {
    const buffer = this.#buffer as Buffer;
    buffer.set(piece, this.#fill);
    const written = buffer.subarray(this.#fill, this.#fill + piece.length);
    this.#fill += piece.length;
    return written;
  }

  /** The part buffer leaves the tail (to become a part); the caller recycles it. */
  take(): Buffer {
    const buffer = this.#buffer as Buffer;
    this.#buffer = undefined;
    this.#fill = 0;
    return buffer;
  }

  /** Hands the part buffer back only once a PUT still reading it is over. */
  releaseWhenSent(sent: Promise<string>): void {
    const buffer = this.take();
    void sent.catch(() => {}).finally(() => this.#ctx.budget.recycle(buffer, this.#ctx.did));
  }

  bytes(): Buffer {
    if (this.#buffer) return this.#buffer.subarray(0, this.#fill);
    return this.#compact ?? Buffer.alloc(0);
  }

  /**
   * After a request: keep a small copy of the tail if the budget allows, free
   * the part buffer. A tail that does not fit leaves memory (with `remember`,
   * its sha256 stays for `load` to check).
   */
  compact(options: { remember: boolean }): void {
    if (!this.#buffer) return;
    const buffer = this.#buffer;
    const tail = buffer.subarray(0, this.#fill);
    this.#buffer = undefined;
    this.#fill = 0;
    const kept = tail.length > 0 && this.#ctx.budget.tryAcquire(tail.length, this.#ctx.did);
    if (kept) this.#compact = Buffer.from(tail);
    else if (options.remember) this.#remember(tail);
    this.#loaded = kept || tail.length === 0;
    this.#ctx.budget.recycle(buffer, this.#ctx.did);
  }

  /** Gives back the part buffer and the idle tail; with `remember`, keeps the tail's sha256 for `load` to check. */
  free(options: { remember: boolean } = { remember: false }): void {
    // An empty tail here is one that already left memory (and was remembered then), or an empty one.
    if (options.remember && this.bytes().length > 0) this.#remember(this.bytes());
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

  /**
   * The writer goes idle and its memory goes back to the budget: the tail
   * must be fetched again before the next write, unless `nothingToLoad` (no
   * bytes after the parts, or an upload that takes no more).
   */
  letGo(options: { remember: boolean; nothingToLoad: boolean }): void {
    this.free(options);
    this.#loaded = options.nothingToLoad;
  }

  #remember(tail: Uint8Array): void {
    if (tail.length > 0) this.#left = { digest: createHash('sha256').update(tail).digest('hex'), length: tail.length };
  }

  /**
   * Fetches the tail from the staged segments at or after `partBytes` into a
   * new part buffer of `partSize` bytes; `size` is the upload's (durable) size.
   * Resolves false when the bytes are not the ones that left memory (see
   * `compact`), true otherwise.
   */
  async load(upload: UploadRef, staged: readonly HoldStagedSegment[], at: { partBytes: number; size: number; partSize: number }, signal: AbortSignal): Promise<boolean> {
    const { hold, did, transport } = this.#ctx;
    const segments = staged.filter((segment) => segment.offset >= at.partBytes);
    await this.allocate(at.partSize);
    const buffer = this.#buffer as Buffer;
    try {
      for (const segment of segments) {
        const bytes = await transport.getBytes(
          async () =>
            (await mappingHoldErrors(() => hold.getPresignedUrl(did, upload.uploadName, { uploadId: upload.uploadId, offset: segment.offset }))).url,
          segment.size,
          signal,
        );
        buffer.set(bytes, segment.offset - at.partBytes);
      }
    } catch (err) {
      // Nothing half-loaded may stay behind: the next attempt starts over.
      this.#ctx.budget.recycle(buffer, this.#ctx.did);
      this.#buffer = undefined;
      this.#fill = 0;
      throw err;
    }
    this.#fill = at.size - at.partBytes;
    this.#loaded = true;
    const left = this.#left;
    this.#left = undefined;
    if (!left) return true;
    const loaded = buffer.subarray(0, this.#fill);
    return left.length === loaded.length && createHash('sha256').update(loaded).digest('hex') === left.digest;
  }
}
