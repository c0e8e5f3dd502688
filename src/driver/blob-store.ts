import type { Readable } from 'node:stream';
import { parseDigest, type DigestAlgorithm } from '../core/digest.ts';
import { HoldBlobWriter } from './blob-writer.ts';
import { mappingHoldErrors } from './errors.ts';
import { PresignedUrlCache } from './presigned-url-cache.ts';
import type { HoldUploadView } from '../protocol/hold-api.ts';
import type { WriterCache } from './writer-cache.ts';
import { DriverError, type BlobStore, type BlobWriter, type ByteRange, type CreateOptions, type Descriptor, type RedirectOptions, type UploadFence } from './types.ts';
import { PRESIGN_AHEAD, type UploadSnapshot, type WriterContext } from './writer-context.ts';
import { decodeWriterId } from './writer-id.ts';

export interface BlobStoreSettings {
  partSize: number;
  equalParts: boolean;
}

/** A BlobStore acting for one DID; writers are cached per driver. */
export class HoldBlobStore implements BlobStore {
  readonly #ctx: WriterContext;
  readonly #cache: WriterCache;
  readonly #settings: BlobStoreSettings;
  readonly #urls: PresignedUrlCache | undefined;

  constructor(ctx: WriterContext, cache: WriterCache, settings: BlobStoreSettings, urls?: PresignedUrlCache) {
    this.#ctx = ctx;
    this.#cache = cache;
    this.#settings = settings;
    this.#urls = urls;
  }

  async stat(digest: string): Promise<Descriptor> {
    const parsed = requireDigest(digest);
    const result = await mappingHoldErrors(() => this.#ctx.hold.stat(this.#ctx.did, parsed));
    return { digest: result.digest, size: result.size };
  }

  async open(digest: string, range?: ByteRange): Promise<Readable> {
    const parsed = requireDigest(digest);
    if (range && (range.start < 0 || range.end < range.start)) throw new DriverError('RANGE_INVALID', 'invalid byte range');
    return this.#ctx.transport.getStream(
      async () => (await mappingHoldErrors(() => this.#ctx.hold.getPresignedUrl(this.#ctx.did, parsed))).url,
      range,
    );
  }

  async redirectURL(digest: string, method: 'GET' | 'HEAD' = 'GET', options: RedirectOptions = {}): Promise<{ url: string; expiresAt: Date }> {
    const parsed = requireDigest(digest);
    const issue = async () => {
      const presigned = await mappingHoldErrors(() => this.#ctx.hold.getPresignedUrl(this.#ctx.did, parsed, { method }));
      return { url: presigned.url, expiresAt: new Date(presigned.expires_at) };
    };
    return this.#urls ? this.#urls.get(PresignedUrlCache.key(this.#ctx.did, method, parsed, options.generation), issue) : issue();
  }

  async create(options: CreateOptions = {}): Promise<BlobWriter> {
    const expected = options.digest === undefined ? undefined : requireDigest(options.digest);
    const algorithm: DigestAlgorithm = expected?.startsWith('sha512:') ? 'sha512' : 'sha256';
    const { hold, did } = this.#ctx;
    // The part size is recorded with the upload, so a process with another
    // configuration resumes it with the sizes it was started with.
    const clientState = { part_size: this.#settings.partSize, equal_parts: this.#settings.equalParts, algorithm };
    const started = await mappingHoldErrors(() => hold.startMultipart(did, { clientState, presignParts: PRESIGN_AHEAD }));
    const snapshot: UploadSnapshot = {
      uploadName: started.upload_name,
      uploadId: started.upload_id,
      startedAt: new Date(),
      parts: [],
      staged: [],
      size: 0,
      partSize: this.#settings.partSize,
      equalParts: this.#settings.equalParts,
      algorithm,
      expiresAt: started.expires_at,
      ...(started.part_urls ? { partUrls: started.part_urls } : {}),
    };
    // Its upload row starts at epoch 0; the first request that takes it holds epoch 1.
    const writer = new HoldBlobWriter(this.#ctx, snapshot, { hashFromStart: true, epoch: 0 });
    this.#cache.set(writer);
    return writer;
  }

  async resume(id: string, options: { state?: string; fence?: UploadFence } = {}): Promise<BlobWriter> {
    const { uploadName, uploadId } = decodeWriterId(id);
    const { state, fence } = options;
    const cached = this.#cache.get(id);
    // A live writer's running hash is of the bytes it wrote; if another request wrote since, they may not be the upload's.
    const live = fence === undefined || cached?.heldEpochBefore(fence.epoch) ? cached : undefined;
    await this.#ctx.step('resumed', uploadName);
    if (state !== undefined && live?.state === state) return live.holding(fence);
    const view = await mappingHoldErrors(() =>
      this.#ctx.hold.uploadStatus(this.#ctx.did, uploadName, uploadId, { presignParts: PRESIGN_AHEAD, ...(fence?.tookOver ? { takeOver: fence.epoch } : {}) }),
    );
    const snapshot = snapshotOf(view, this.#settings);
    if (live?.syncWith(snapshot)) return live.holding(fence);
    const writer = new HoldBlobWriter(this.#ctx, snapshot, { hashFromStart: false, ...(fence ? { epoch: fence.epoch } : {}) });
    this.#cache.set(writer);
    return writer;
  }

  async claim(digest: string): Promise<Descriptor> {
    const parsed = requireDigest(digest);
    const result = await mappingHoldErrors(() => this.#ctx.hold.claim(this.#ctx.did, parsed));
    return { digest: result.digest, size: result.size };
  }

  async release(digest: string): Promise<boolean> {
    return this.#removing(digest, (parsed) => this.#ctx.hold.release(this.#ctx.did, parsed));
  }

  async delete(digest: string): Promise<boolean> {
    return this.#removing(digest, (parsed) => this.#ctx.hold.delete(this.#ctx.did, parsed));
  }

  /** Asks the hold to remove a blob; whatever it answers, no cached pull URL for it is handed out again. */
  async #removing(digest: string, remove: (digest: string) => Promise<{ deleted: boolean }>): Promise<boolean> {
    const parsed = requireDigest(digest);
    try {
      return (await mappingHoldErrors(() => remove(parsed))).deleted;
    } finally {
      this.#urls?.forgetDigest(parsed);
    }
  }
}

function requireDigest(digest: string): string {
  if (!parseDigest(digest)) throw new DriverError('DIGEST_INVALID', `${digest} is not a valid digest`);
  return digest;
}

function snapshotOf(view: HoldUploadView, settings: BlobStoreSettings): UploadSnapshot {
  const state = view.client_state ?? {};
  return {
    uploadName: view.upload_name,
    uploadId: view.upload_id,
    startedAt: new Date(view.created_at),
    parts: view.parts,
    staged: view.staged.map((segment) => ({ offset: segment.offset, size: segment.size, ...(segment.segment_id !== undefined ? { segment_id: segment.segment_id } : {}) })),
    size: view.size,
    ...(view.state === 'completed' ? { completedSize: view.completed_size ?? 0 } : {}),
    partSize: typeof state.part_size === 'number' ? state.part_size : settings.partSize,
    equalParts: typeof state.equal_parts === 'boolean' ? state.equal_parts : settings.equalParts,
    algorithm: state.algorithm === 'sha512' ? 'sha512' : 'sha256',
    expiresAt: view.expires_at,
    ...(view.part_urls ? { partUrls: view.part_urls } : {}),
    ...(view.taken_over ? { takenOver: true } : {}),
  };
}
