import type { Readable } from 'node:stream';

/**
 * The storage driver's contract, modelled on distribution's BlobStore and
 * BlobWriter. A `BlobStore` acts for one DID against one hold.
 */
export interface Descriptor {
  digest: string;
  size: number;
  mediaType?: string;
  /**
   * Set by `commit`: true when the blob was already stored and nothing was
   * copied. A caller that races garbage collection must not trust such a
   * blob to survive (see docs/GC.md).
   */
  existed?: boolean;
}

/** What a commit asserts: the digest always, the size when the client sent one. */
export interface CommitDescriptor {
  digest: string;
  size?: number;
  mediaType?: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStore {
  /** Size of the blob at `digest`; throws `BLOB_UNKNOWN` when there is none. */
  stat(digest: string): Promise<Descriptor>;
  /** Streams the blob (or a range of it) from storage through a presigned GET. */
  open(digest: string, range?: ByteRange): Promise<Readable>;
  /**
   * A presigned GET URL for the blob, for a client redirect. `generation`
   * names which life of the blob the caller means (a digest deleted and stored
   * again may be another object): a URL issued for another generation is
   * never handed out.
   */
  redirectURL(digest: string, method?: 'GET' | 'HEAD', options?: RedirectOptions): Promise<{ url: string; expiresAt: Date }>;
  /** Starts an upload. Durable when it resolves: `resume(writer.id)` finds it. */
  create(options?: CreateOptions): Promise<BlobWriter>;
  /**
   * The writer for an upload started earlier, in this process or another.
   * Throws `BLOB_UPLOAD_UNKNOWN` when the upload is gone. With `state`, the
   * `writer.state` the caller stored after the upload's last request (and
   * that no other request has used since), a live writer in this process
   * that is still in that state is returned without asking the storage.
   *
   * With `fence`, the caller holds the upload exclusively and the writer
   * writes as that holder (see `UploadFence`). A live writer is reused only
   * if it held the epoch just before: otherwise another request wrote since,
   * and a writer is rebuilt from the storage's state (without a running
   * hash, so its commit reads the bytes back). Without `fence` the writer is
   * for reading the upload's state only.
   */
  resume(id: string, options?: { state?: string; fence?: UploadFence }): Promise<BlobWriter>;
  /**
   * The same as `release` on a hold (which never deletes bytes another
   * registry still claims); prefer `release`. Resolves whether the bytes
   * were deleted.
   */
  delete(digest: string): Promise<boolean>;
  /**
   * Records that this registry references a stored blob, so another
   * registry's release cannot delete it. Throws `BLOB_UNKNOWN` when it is not
   * stored.
   */
  claim(digest: string): Promise<Descriptor>;
  /**
   * This registry no longer references the blob; the hold deletes it once no
   * registry does. Resolves whether the bytes were deleted.
   */
  release(digest: string): Promise<boolean>;
}

/**
 * A caller's exclusive hold on an upload, kept where every instance sees it
 * (the registry's upload row): `epoch` grows by one each time a request, on
 * any instance, takes the upload. The writer names it in every write to
 * the storage, which refuses an epoch lower than one it has seen, so a
 * request whose hold ran out (a paused process) can never record, complete
 * or publish over the request that took the upload after it.
 */
export interface UploadFence {
  readonly epoch: number;
  /**
   * The previous holder's hold ran out instead of ending: it may still be
   * writing. The storage records the new epoch before this writer writes a
   * byte.
   */
  readonly tookOver: boolean;
}

export interface RedirectOptions {
  generation?: number;
}

export interface CreateOptions {
  /** The digest the caller expects, when known up front. */
  digest?: string;
}

export interface ReadOptions {
  /**
   * How many bytes `source` will yield (a request's Content-Length), when
   * known: a part this request will fill is then sent while it arrives.
   */
  length?: number;
}

export interface BlobWriter {
  /** Opaque, URL-safe; pass it to `BlobStore.resume`. */
  readonly id: string;
  readonly startedAt: Date;
  /** Bytes accepted so far. After `close()` resolves, all of them are durable. */
  readonly size: number;
  /**
   * The chunk length that fills whole parts: a client that sends chunks of at
   * least this length (but the last) has nothing staged between requests.
   * Advertised as `OCI-Chunk-Min-Length`.
   */
  readonly chunkMinLength?: number;
  /**
   * Names the upload's durable state, the same in every process that has
   * seen it; undefined while bytes are not yet durable. A caller that keeps
   * it after a request and passes it to `resume` spares the next request a
   * round trip to the storage.
   */
  readonly state?: string;
  /**
   * Accepts bytes. Resolves once the writer can take more (backpressure):
   * while this writer has its maximum parts in flight, or the driver's memory
   * budget is spent, it waits.
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Writes everything from `source`, honouring backpressure; resolves to bytes read. */
  readFrom(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: ReadOptions): Promise<number>;
  /**
   * Ends one request's worth of writing. When it resolves every accepted byte
   * is durable (full parts in the multipart upload, the tail as staged
   * segments) and the upload can be resumed anywhere. Safe to call twice.
   */
  close(): Promise<void>;
  /**
   * Finishes the upload: sends the last part, completes it, verifies the
   * digest (and size, when given) and publishes the blob at its content
   * address. On a mismatch it throws `DIGEST_INVALID` or `SIZE_INVALID` and
   * removes the upload, leaving nothing at the digest.
   */
  commit(descriptor: CommitDescriptor): Promise<Descriptor>;
  /** Aborts the upload and deletes its staged data. Safe to call twice. */
  cancel(): Promise<void>;
  /**
   * Stops writing, at once: parts in flight are aborted and nothing more is
   * sent or recorded; the upload stays at the storage as it is, for whoever
   * resumes it. For a caller that lost its hold on the upload. `close()`
   * then waits for the aborted parts. Safe to call twice.
   */
  abandon(reason: Error): void;
}

export type DriverErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'DIGEST_INVALID'
  | 'SIZE_INVALID'
  | 'RANGE_INVALID'
  | 'BLOB_TOO_LARGE'
  | 'DENIED'
  /** This client or account holds too much right now; retry later (429). */
  | 'BUSY'
  /** The storage provider cannot do this at all; retrying will not help. */
  | 'UNSUPPORTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class DriverError extends Error {
  readonly code: DriverErrorCode;

  constructor(code: DriverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DriverError';
    this.code = code;
  }
}

/** True when `err` is a driver error with one of `codes` (any code when none are given). */
export function isDriverError(err: unknown, ...codes: readonly DriverErrorCode[]): err is DriverError {
  return err instanceof DriverError && (codes.length === 0 || codes.includes(err.code));
}
