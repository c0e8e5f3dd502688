import { MIN_PART_SIZE } from '../../protocol/limits.ts';
import { storageKey, uploadFromUploadKey } from '../keys.ts';
import type { UploadName } from '../../protocol/upload-names.ts';
import { LRUCache } from 'lru-cache';
import { StorageError, type ObjectInfo, type StorageBackend } from '../backends/types.ts';
import type { HoldPart, HoldStagedSegment } from '../../protocol/hold-api.ts';

/**
 * The hold's durable record of one upload: who owns it, the provider's
 * multipart id, and everything the driver needs to resume it without trusting
 * its own memory. It lives next to the upload's data in the bucket, so the
 * hold keeps no local state and any hold process can serve any request.
 */
export interface UploadRecord {
  /** 1: the bytes are at `uploads/<uuid>/data`; 2: at `objects/<uuid>`, where a commit can leave them. */
  readonly version: 1 | 2;
  readonly name: string;
  readonly did: string;
  /**
   * `multipart` for part uploads; `single` for one presigned PUT, which is a
   * one-part multipart upload that /move completes (or, with an empty
   * `upload_id`, a PutObject URL, from holds before that).
   */
  readonly kind: 'multipart' | 'single';
  readonly upload_id: string;
  readonly expected_digest?: string;
  /**
   * `starting` is written before the provider's upload is created (its
   * `upload_id` still empty), so a hold that dies in between leaves a record
   * the janitor can find the upload by.
   */
  readonly state: 'starting' | 'open' | 'completed';
  readonly created_at: string;
  readonly updated_at: string;
  /** Uploaded parts, in order, each acknowledged by its ETag. */
  readonly parts: readonly HoldPart[];
  /** Durable bytes after the last part, each segment shorter than a part. */
  readonly staged: readonly HoldStagedSegment[];
  /** Bytes in parts plus staged segments: everything durable. */
  readonly size: number;
  readonly completed_size?: number;
  /** The parts the upload was completed from: a repeat of the completion or a publish must name the same. */
  readonly completed_parts?: readonly CompletedPart[];
  /**
   * Set by /move just before the blob key is made a reference to this
   * upload's object: from then on the object may be the blob's only bytes,
   * and discarding the upload must leave it if the reference exists.
   */
  readonly publishing_digest?: string;
  /**
   * Set, conditionally on the version it found idle, by the janitor that
   * discards the upload: a write from a call that read the record before it
   * fails, and calls after it find the upload gone.
   */
  readonly purging_at?: string;
  /** Small opaque state the driver keeps here (part size, hash progress). */
  readonly client_state?: Readonly<Record<string, unknown>>;
  /**
   * The highest writer epoch any call named (see the contract's
   * `writer_epoch`): a write naming a lower one comes from a writer that
   * lost the upload to another, and is refused.
   */
  readonly writer_epoch?: number;
  /**
   * Set when a writer took the upload over from one whose lease ran out
   * (a `/upload-status` with a higher `writer_epoch`): the old one may still
   * PUT parts through URLs it holds, so from then on no running hash proves
   * the upload's content.
   */
  readonly taken_over?: true;
}

/** A part an upload was completed from, as its record keeps it. */
export interface CompletedPart {
  readonly part_number: number;
  readonly etag: string;
}

/** What a record keeps of the parts an upload is completed from (`completed_parts`). */
export function completedParts(parts: readonly CompletedPart[]): CompletedPart[] {
  return parts.map(({ part_number, etag }) => ({ part_number, etag }));
}

/** False for a record whose upload is not there to use: still starting, or being discarded. */
export function isUsable(record: UploadRecord): boolean {
  return record.state !== 'starting' && record.purging_at === undefined;
}

export interface RecordRead {
  readonly record: UploadRecord;
  /** What the next write is made conditional on. */
  readonly etag: string;
}

/** Sessions this process wrote or read last, per upload; enough for every upload in flight. */
const REMEMBERED_SESSIONS = 10_000;
/** A record with thousands of parts is hundreds of KiB: the bytes are bounded too. */
const REMEMBERED_BYTES = 64 * 1024 * 1024;

interface Remembered {
  read: RecordRead;
  bytes: number;
}

export class UploadRecordStore {
  readonly #backend: StorageBackend;
  readonly #prefix: string;
  /** Only where writes are conditional: there a stale copy cannot win a write. */
  readonly #remembered: LRUCache<string, Remembered> | undefined;

  constructor(backend: StorageBackend, prefix: string) {
    this.#backend = backend;
    this.#prefix = prefix;
    this.#remembered = backend.capabilities.conditionalWrites
      ? new LRUCache<string, Remembered>({ max: REMEMBERED_SESSIONS, maxSize: REMEMBERED_BYTES, sizeCalculation: (entry) => Math.max(1, entry.bytes) })
      : undefined;
  }

  async get(upload: UploadName): Promise<UploadRecord | undefined> {
    return (await this.read(upload))?.record;
  }

  /**
   * The record and the ETag to make the next write conditional on. With
   * `remembered`, the copy this process last wrote or read, if any, saves
   * the read: it may be stale, so only for what does not depend on progress
   * or for a conditional write that starts over when refused (see
   * `HoldContext#startingOverIfStale`).
   */
  async read(upload: UploadName, options: { remembered?: boolean } = {}): Promise<RecordRead | undefined> {
    const remembered = options.remembered ? this.#remembered?.get(upload.uuid)?.read : undefined;
    if (remembered) return remembered;
    return this.#fetch(upload, true);
  }

  /**
   * The record as stored, without remembering it: the janitor reads every
   * upload's, and must not push the records of uploads in flight out of memory.
   */
  peek(upload: UploadName): Promise<RecordRead | undefined> {
    return this.#fetch(upload, false);
  }

  /** How many records this process remembers; for tests and diagnostics. */
  get rememberedCount(): number {
    return this.#remembered?.size ?? 0;
  }

  async #fetch(upload: UploadName, remember: boolean): Promise<RecordRead | undefined> {
    const object = await this.#backend.getSmall(storageKey({ kind: 'upload-session', upload }, this.#prefix));
    if (!object) {
      this.#remembered?.delete(upload.uuid);
      return undefined;
    }
    const read = { record: JSON.parse(Buffer.from(object.body).toString('utf8')) as UploadRecord, etag: object.etag };
    if (remember) this.#remembered?.set(upload.uuid, { read, bytes: object.body.length });
    return read;
  }

  /**
   * Writes the record. With `ifMatch`, only over the version that was read:
   * a concurrent update makes this throw `PRECONDITION_FAILED`.
   */
  async put(record: UploadRecord, ifMatch?: string): Promise<void> {
    const upload = uploadNameOf(record);
    this.#remembered?.delete(upload.uuid);
    const body = Buffer.from(JSON.stringify(record));
    const etag = await this.#backend.putSmall(storageKey({ kind: 'upload-session', upload }, this.#prefix), body, ifMatch ? { ifMatch } : {});
    if (etag) this.#remembered?.set(upload.uuid, { read: { record, etag }, bytes: body.length });
  }

  /** Drops the remembered copy of an upload whose record is being deleted. */
  forget(upload: UploadName): void {
    this.#remembered?.delete(upload.uuid);
  }

  /** `put` over the version read as `etag`; false when the record has changed or gone since. */
  async putIfUnchanged(record: UploadRecord, etag: string): Promise<boolean> {
    try {
      await this.put(record, etag);
      return true;
    } catch (err) {
      if (err instanceof StorageError && (err.code === 'PRECONDITION_FAILED' || err.code === 'NOT_FOUND')) return false;
      throw err;
    }
  }

  /** Every object that belongs to the upload, the record record last. */
  async keysOf(upload: UploadName): Promise<string[]> {
    const sessionKey = storageKey({ kind: 'upload-session', upload }, this.#prefix);
    const directory = sessionKey.slice(0, -'session.json'.length);
    const keys: string[] = [];
    for await (const object of this.#backend.list(directory)) {
      if (object.key !== sessionKey) keys.push(object.key);
    }
    keys.push(sessionKey);
    return keys;
  }

  /**
   * The upload directories after `startAfter`, in key order, one at a time:
   * each with the keys listed in it. Keys of one directory are contiguous in
   * a listing, so only the current directory's are held.
   */
  async *directories(options: { startAfter?: string } = {}): AsyncIterable<UploadDirectory> {
    let current: { upload: UploadName; keys: string[]; session?: ObjectInfo } | undefined;
    for await (const object of this.#backend.list(storageKey({ kind: 'uploads-root' }, this.#prefix), options)) {
      const upload = uploadFromUploadKey(object.key, this.#prefix);
      if (!upload) continue;
      if (current && current.upload.uuid !== upload.uuid) {
        yield current;
        current = undefined;
      }
      current ??= { upload, keys: [] };
      current.keys.push(object.key);
      if (object.key === storageKey({ kind: 'upload-session', upload }, this.#prefix)) current.session = object;
    }
    if (current) yield current;
  }
}

/**
 * An upload's directory as one listing saw it. Without `session`, the
 * listing found no record there; only a read of it says whether there is one.
 */
export interface UploadDirectory {
  readonly upload: UploadName;
  /** Every key listed under the directory, in order; the last is where the next listing resumes. */
  readonly keys: readonly string[];
  readonly session?: ObjectInfo;
}

export function uploadNameOf(record: UploadRecord): UploadName {
  const uuid = record.name.slice('uploads/temp-'.length);
  return { uuid, value: record.name };
}

/** The upload's part size, as its writer declared it, or as its parts show, or at least S3's minimum. */
export function partSizeOf(record: UploadRecord): number {
  const declared = record.client_state?.part_size;
  if (typeof declared === 'number' && Number.isSafeInteger(declared) && declared >= MIN_PART_SIZE) return declared;
  return Math.max(MIN_PART_SIZE, ...record.parts.map((part) => part.size));
}
