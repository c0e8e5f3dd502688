import { randomUUID } from 'node:crypto';
import type { Digest } from '../../core/digest.ts';
import { HoldError } from '../errors.ts';
import { newSegmentId, parseBlobRef } from '../keys.ts';
import { uploadNameFromUuid } from '../../protocol/upload-names.ts';
import { assertPartNumber } from './multipart-rules.ts';
import { partSizeOf, uploadNameOf, type UploadRecord } from './records.ts';
import { MAX_PART_NUMBER } from '../../protocol/limits.ts';
import { mappingStorageErrors } from '../storage-errors.ts';
import { assertCurrentWriter, type HoldContext } from '../context.ts';
import type { Uploads } from './uploads.ts';
import type { HoldInput, HoldPresignedUrl, HoldStagedSegment } from '../../protocol/hold-api.ts';

/** The URLs callers move bytes through: parts and staged segments of an upload, single uploads, and blobs. */
export class Presigner {
  readonly #ctx: HoldContext;
  readonly #uploads: Uploads;

  constructor(ctx: HoldContext, uploads: Uploads) {
    this.#ctx = ctx;
    this.#uploads = uploads;
  }

  async partUrl(did: string, input: HoldInput<'partPresignedUrl'>): Promise<HoldPresignedUrl> {
    this.#ctx.authorize(did, 'write');
    assertPartNumber(input.part_number);
    const { upload, record } = await this.#ctx.openRecord(did, input.digest, input.upload_id, 'multipart', { remembered: true });
    assertCurrentWriter(record, input.writer_epoch);
    return mappingStorageErrors(async () => {
      const key = this.#ctx.dataKey(upload, record);
      await this.#assertPartFits(did, key, record, input.part_number);
      return view(await this.#ctx.backend.presignUploadPart(key, record.upload_id, input.part_number, this.#ctx.presignTtl));
    });
  }

  /**
   * Refuses a part URL once the bytes the upload has written would pass the
   * DID's quota. The parts before this one, at the upload's part size, are an
   * upper bound; only when that bound does not fit are the parts actually in
   * storage counted (one listing), since a writer asks for URLs ahead of the
   * bytes it sends and may yet stop inside the limit.
   */
  async #assertPartFits(did: string, key: string, record: UploadRecord, partNumber: number): Promise<void> {
    const quotas = this.#ctx.quotas;
    if (!quotas || (await quotas.fits(did, Math.max(record.size, (partNumber - 1) * partSizeOf(record))))) return;
    const parts = await this.#ctx.backend.uploadedPartsFrom(key, record.upload_id, 1, MAX_PART_NUMBER);
    const staged = record.staged.reduce((sum, segment) => sum + segment.size, 0);
    await quotas.assertRoom(did, Math.max(record.size, parts.reduce((sum, part) => sum + part.size, staged)));
  }

  /**
   * For a content digest: a PUT URL for a new single-object upload, which
   * `/move` then completes and publishes once the caller has verified the bytes. For an
   * upload name with an `offset`: a PUT URL for that staged tail segment.
   */
  async putUrl(did: string, input: HoldInput<'putPresignedUrl'>): Promise<HoldPresignedUrl> {
    this.#ctx.authorize(did, 'write');
    const ref = requireBlobRef(input.digest);
    return mappingStorageErrors(async () => {
      if (ref.kind === 'digest') {
        await this.#ctx.quotas?.assertRoom(did, 0);
        // A one-part multipart upload, which /move completes: once complete, the
        // part URL writes nothing, so no URL this hold issued can change bytes
        // after they were published (a presigned PutObject URL could, for 15 minutes).
        const record = await this.#uploads.begin(this.#uploads.newSession(uploadNameFromUuid(randomUUID()), did, 'single', ref.digest));
        const presigned = await this.#ctx.backend.presignUploadPart(this.#ctx.dataKey(uploadNameOf(record), record), record.upload_id, 1, this.#ctx.presignTtl);
        return { ...view(presigned), upload_name: record.name };
      }
      if (input.offset === undefined) throw new HoldError('INVALID_REQUEST', 'offset is required to stage bytes of an upload');
      const { upload, record } = await this.#ctx.openRecord(did, input.digest, requireUploadId(input.upload_id), 'multipart', { remembered: true });
      assertCurrentWriter(record, input.writer_epoch);
      await this.#ctx.quotas?.assertRoom(did, record.size);
      // A key no other URL writes: a second writer staging at the same offset cannot replace these bytes.
      const segment = { offset: input.offset, segment_id: newSegmentId() };
      return { ...view(await this.#ctx.backend.presignPut(this.#ctx.stagedKey(upload, { ...segment, size: 0 }), this.#ctx.presignTtl)), segment_id: segment.segment_id };
    });
  }

  /**
   * A GET (or HEAD) URL for a blob, or for the caller's own upload: its staged
   * segment at `offset`, or its assembled temp data when `offset` is absent.
   */
  async getUrl(did: string, input: HoldInput<'getPresignedUrl'>): Promise<HoldPresignedUrl> {
    const ref = requireBlobRef(input.digest);
    const method = input.method ?? 'GET';
    if (ref.kind === 'digest') {
      this.#ctx.authorize(did, 'read');
      return mappingStorageErrors(async () => view(await this.#ctx.backend.presignGet(await this.#blobBytesKey(ref.digest), this.#ctx.presignTtl, method)));
    }
    this.#ctx.authorize(did, 'write');
    const { upload, record } = await this.#ctx.ownedRecord(did, input.digest, requireUploadId(input.upload_id));
    const key = input.offset === undefined ? this.#ctx.dataKey(upload, record) : this.#ctx.stagedKey(upload, recordedSegment(record, input.offset));
    return mappingStorageErrors(async () => view(await this.#ctx.backend.presignGet(key, this.#ctx.presignTtl, method)));
  }

  /**
   * Where a blob's bytes are: the object a reference names, or the blob key
   * itself. Read from the bucket on every call, never cached: another hold
   * process may have deleted the blob and published the digest again under
   * another object since.
   */
  async #blobBytesKey(digest: Digest): Promise<string> {
    const key = this.#ctx.key({ kind: 'blob', digest });
    if (!this.#ctx.backend.capabilities.references) return key;
    const object = await this.#ctx.backend.stat(key);
    return object?.target ? this.#ctx.blobs.checkedTarget(object.target) : key;
  }
}

function view(presigned: { url: string; expiresAt: Date; method: 'PUT' | 'GET' | 'HEAD' }): HoldPresignedUrl {
  return { url: presigned.url, expires_at: presigned.expiresAt.toISOString(), method: presigned.method };
}

function requireBlobRef(input: string) {
  const ref = parseBlobRef(input);
  if (!ref) throw new HoldError('DIGEST_INVALID');
  return ref;
}

/** The staged segment the record names at `offset`: only recorded bytes are read back. */
function recordedSegment(record: UploadRecord, offset: number): HoldStagedSegment {
  const segment = record.staged.find((candidate) => candidate.offset === offset);
  if (!segment) throw new HoldError('RANGE_INVALID', `the upload has no staged segment at offset ${offset}`);
  return segment;
}

function requireUploadId(uploadId: string | undefined): string {
  if (!uploadId) throw new HoldError('INVALID_REQUEST', 'upload_id is required for an upload name');
  return uploadId;
}
