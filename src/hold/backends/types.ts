/**
 * The narrow contract every storage backend implements. Keys always come from
 * `storageKey()`; a backend never builds one. Backends map their SDK or system
 * errors to `StorageError` so nothing above this layer sees them.
 */

export interface ObjectInfo {
  readonly key: string;
  /** For a reference, the size of the object it names. */
  readonly size: number;
  readonly lastModified?: Date;
  /** Set when the object at `key` is a reference: the key that holds the bytes. */
  readonly target?: string;
}

export interface ListOptions {
  readonly startAfter?: string;
}

export interface PresignedRequest {
  readonly method: 'PUT' | 'GET' | 'HEAD';
  readonly url: string;
  readonly expiresAt: Date;
}

export interface CompletedPartInput {
  readonly partNumber: number;
  /** Quoted, as S3 wants it in CompleteMultipartUpload. */
  readonly etag: string;
}

export interface UploadedPart {
  /** Quoted. */
  readonly etag: string;
  readonly size: number;
}

export interface SmallWriteCondition {
  readonly ifMatch?: string;
  readonly ifNoneMatch?: '*';
}

export interface BackendCapabilities {
  /** Server-side multipart copy; Storj's gateway lacks it. */
  readonly uploadPartCopy: boolean;
  /** Largest object a single CopyObject may copy. */
  readonly maxSingleCopyBytes: number;
  /** Conditional PUT (If-Match, If-None-Match); without it concurrent writes are last-write-wins. */
  readonly conditionalWrites: boolean;
  /**
   * `putReference` works: a commit publishes a blob by reference (O(1))
   * instead of copying its bytes. Needs create-only writes (If-None-Match).
   */
  readonly references: boolean;
}

export interface StorageBackend {
  readonly kind: 'fs' | 's3';
  readonly capabilities: BackendCapabilities;

  /** Starts a multipart upload at `key`; resolves to the provider's upload id. */
  createMultipartUpload(key: string): Promise<string>;
  presignUploadPart(key: string, uploadId: string, partNumber: number, ttlSeconds: number): Promise<PresignedRequest>;
  /**
   * Assembles the parts. When it resolves the object exists at `key`. Throws
   * `StorageError` `PART_TOO_SMALL`, `INVALID_PART` or `UPLOAD_UNKNOWN`.
   */
  completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPartInput[]): Promise<void>;
  /** Safe to call twice: an upload that is already gone is not an error. */
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /** The ids of the multipart uploads in progress at exactly `key`. */
  multipartUploadsAt(key: string): Promise<string[]>;
  /**
   * The part uploaded as `partNumber`, undefined if none was. Throws
   * `StorageError` `UPLOAD_UNKNOWN` once the upload is completed or aborted.
   */
  uploadedPart(key: string, uploadId: string, partNumber: number): Promise<UploadedPart | undefined>;
  /** Uploaded parts numbered from `first` on, in order, as far as they run without a gap; at most `max`. */
  uploadedPartsFrom(key: string, uploadId: string, first: number, max: number): Promise<(UploadedPart & { partNumber: number })[]>;

  presignPut(key: string, ttlSeconds: number): Promise<PresignedRequest>;
  presignGet(key: string, ttlSeconds: number, method: 'GET' | 'HEAD'): Promise<PresignedRequest>;

  /** Undefined when there is no object at `key`. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /**
   * Small control-plane objects only (session records, claims, leases); never
   * blob bytes. With `ifMatch`, the write happens only if the object still has
   * that ETag; with `ifNoneMatch: '*'`, only if there is no object at `key`
   * (`PRECONDITION_FAILED` otherwise). Both only where
   * `capabilities.conditionalWrites`; elsewhere the write is unconditional.
   * Resolves to the new ETag, as `getSmall` would report it, when the
   * provider says.
   */
  putSmall(key: string, body: Uint8Array, condition?: SmallWriteCondition): Promise<string | undefined>;
  getSmall(key: string): Promise<{ body: Uint8Array; etag: string } | undefined>;
  /** Safe to call twice; missing keys are ignored. */
  delete(keys: readonly string[]): Promise<void>;
  /**
   * Creates, only if nothing is at `key`, an empty object that names
   * `targetKey` (and its `size`); `stat(key)` then reports the target.
   * Resolves false when `key` already exists. Only when `capabilities.references`.
   */
  putReference(key: string, targetKey: string, size: number): Promise<boolean>;
  /** Server-side copy. `size` picks the strategy (single copy or part copies). */
  copy(sourceKey: string, destinationKey: string, size: number): Promise<void>;
  /**
   * The objects under `prefix`, in key order (UTF-8 bytes, as S3 sorts
   * them); with `startAfter`, only those after that key. Pages are fetched
   * as the caller iterates, so one that stops early reads no further.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;

  close(): Promise<void>;
}

export type StorageErrorCode =
  | 'NOT_FOUND'
  | 'UPLOAD_UNKNOWN'
  | 'INVALID_PART'
  | 'PART_TOO_SMALL'
  | 'PRECONDITION_FAILED'
  | 'UNSUPPORTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

