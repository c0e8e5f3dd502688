import type { DigestAlgorithm } from '../core/digest.ts';
import { isHoldError, mappingHoldErrors, toDriverError } from './errors.ts';
import type { HoldPart, HoldStagedSegment, HoldUploadView } from '../protocol/hold-api.ts';
import type { PartPipeline } from './part-pipeline.ts';
import type { PartSizing } from './part-size.ts';
import type { PartUrls } from './part-urls.ts';
import { DriverError } from './types.ts';
import { samePartList, sameStagedSegments } from '../protocol/parts.ts';
import { PRESIGN_AHEAD, type UploadRef, type WriterContext } from './writer-context.ts';

/** What recording progress reads and updates of a writer besides the record. */
export interface ProgressSource {
  /** The writer: its `size` is every byte accepted. */
  readonly writer: { readonly size: number };
  readonly parts: PartPipeline;
  /** The bytes after the last part. */
  readonly tail: Buffer;
  readonly sizing: PartSizing;
  readonly urls: PartUrls;
  readonly algorithm: DigestAlgorithm;
  /** The writer epoch the writer writes as, if it holds the upload (see `UploadFence`). */
  readonly epoch: number | undefined;
}

/** Whole parts go unrecorded only while URLs for at least this many next parts are at hand. */
const URLS_TO_LEAVE_UNRECORDED = 2;

/**
 * What the hold has recorded of an upload: the staged segments, the
 * record's size and version (its expiry, which every update moves), and the
 * durable size. `record` makes every accepted byte durable and, unless they
 * are whole parts only, records them.
 */
export class UploadRecord {
  readonly #ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'maxPartsInFlight' | 'step'>;
  readonly #upload: UploadRef;
  #staged: HoldStagedSegment[];
  /** Every byte S3 holds for this upload: the record's, and whole parts since. */
  #durableSize: number;
  #recordedSize: number;
  #version: string;
  /** When this process learnt `#version`, by its own clock. */
  #versionSeenAt = Date.now();

  constructor(
    ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'maxPartsInFlight' | 'step'>,
    upload: UploadRef,
    recorded: { staged: readonly HoldStagedSegment[]; durableSize: number; expiresAt: string },
  ) {
    this.#ctx = ctx;
    this.#upload = upload;
    this.#staged = [...recorded.staged];
    this.#durableSize = recorded.durableSize;
    this.#recordedSize = recorded.durableSize;
    this.#version = recorded.expiresAt;
  }

  /** Bytes S3 holds durably: recorded at the hold, or in whole parts it finds when asked. */
  get durableSize(): number {
    return this.#durableSize;
  }

  /** The record's version as of the hold's last answer. */
  get version(): string {
    return this.#version;
  }

  get staged(): readonly HoldStagedSegment[] {
    return this.#staged;
  }

  /**
   * Stages the tail and records the new parts and segments (and an adopted
   * part size) at the hold, taking the part URLs it hands out with its answer.
   */
  async record(source: ProgressSource, signal: AbortSignal): Promise<void> {
    const { writer, parts, sizing } = source;
    if (this.#mayLeaveUnrecorded(source)) {
      // Each part is durable once S3 answered its PUT; /upload-status records them for whoever resumes.
      this.#durableSize = writer.size;
      return;
    }
    const at = { staged: this.#staged, partBytes: parts.partBytes, size: writer.size, tail: source.tail };
    const staged = await stageTail(this.#ctx, this.#upload, { ...at, epoch: source.epoch }, signal);
    const newParts = parts.unrecorded();
    const clientState = sizing.adopted ? { client_state: { part_size: sizing.base, equal_parts: sizing.equalParts, algorithm: source.algorithm } } : {};
    const view = await sendProgress(
      this.#ctx,
      this.#upload,
      { base_size: this.#recordedSize, parts: newParts, staged, ...clientState, presign_parts: PRESIGN_AHEAD },
      { writer, parts: [...parts.recorded, ...newParts], staged, epoch: source.epoch },
    );
    await this.#ctx.step('progress-recorded', this.#upload.uploadName);
    sizing.recorded();
    source.urls.keep(view.part_urls);
    if (view.size !== writer.size) throw new DriverError('INTERNAL', `the hold recorded ${view.size} bytes, expected ${writer.size}`);
    parts.markRecorded(newParts);
    this.#staged = staged;
    this.#durableSize = view.size;
    this.#recordedSize = view.size;
    this.#version = view.expires_at;
    this.#versionSeenAt = Date.now();
  }

  /** The hold has recorded everything durable (its /upload-status records the parts left unrecorded). */
  synced(snapshot: { size: number; staged: readonly HoldStagedSegment[]; expiresAt: string }): void {
    this.#staged = [...snapshot.staged];
    this.#durableSize = snapshot.size;
    this.#recordedSize = snapshot.size;
    this.#version = snapshot.expiresAt;
    this.#versionSeenAt = Date.now();
  }

  /**
   * Whole parts of the recorded size and nothing after them: the hold finds
   * such parts on its own, so the request needs no hold call, while URLs for
   * the next parts are at hand and less than half the record's lifetime has
   * passed. The janitor judges an upload idle by its record only once all of
   * it has, so it never finds an upload in use idle.
   */
  #mayLeaveUnrecorded({ writer, parts, sizing, urls }: ProgressSource): boolean {
    const last = parts.recorded.at(-1);
    return (
      last !== undefined &&
      !sizing.adopted &&
      writer.size === parts.partBytes &&
      parts.unrecorded().every((part) => part.size === last.size) &&
      urls.available(parts.nextPart) >= URLS_TO_LEAVE_UNRECORDED &&
      Date.now() - this.#versionSeenAt < (Date.parse(this.#version) - this.#versionSeenAt) / 2
    );
  }
}

/**
 * PUTs the bytes of `tail` that no staged segment holds yet as a new staged
 * segment; resolves to the staged segments after the last part, the new one
 * included. `tail` holds the bytes from `partBytes` to `size`.
 */
async function stageTail(
  ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'step'>,
  upload: UploadRef,
  at: { staged: readonly HoldStagedSegment[]; partBytes: number; size: number; tail: Buffer; epoch: number | undefined },
  signal: AbortSignal,
): Promise<HoldStagedSegment[]> {
  const { hold, did, transport } = ctx;
  const staged = at.staged.filter((segment) => segment.offset >= at.partBytes);
  const stagedEnd = staged.reduce((end, segment) => end + segment.size, at.partBytes);
  if (at.size > stagedEnd) {
    const bytes = at.tail.subarray(stagedEnd - at.partBytes);
    const offset = stagedEnd;
    // Each URL writes a segment object of its own; a retried PUT asks for a new one.
    let segmentId: string | undefined;
    await transport.put(
      async () => {
        const presigned = await mappingHoldErrors(() => hold.putPresignedUrl(did, upload.uploadName, { uploadId: upload.uploadId, offset, epoch: at.epoch }));
        segmentId = presigned.segment_id;
        return presigned.url;
      },
      bytes,
      'staged',
      signal,
    );
    staged.push({ offset, size: bytes.length, ...(segmentId !== undefined ? { segment_id: segmentId } : {}) });
    await ctx.step('tail-staged', upload.uploadName);
  }
  return staged;
}

/**
 * Records progress. A conflict can mean our own earlier attempt landed and
 * only its answer was lost: if the hold holds exactly what this writer sent
 * (these parts, and these very staged segments, which no other writer can
 * have written) and no later writer epoch, that is success. It
 * can also mean another process's /upload-status recorded the parts this
 * writer left unrecorded (exactly those, nothing else): then the rest is
 * recorded on top. Anything else is another writer's progress: this
 * writer's bytes are not the upload's, and it fails.
 */
async function sendProgress(
  ctx: Pick<WriterContext, 'hold' | 'did'>,
  upload: UploadRef,
  progress: { base_size: number; parts: HoldPart[]; staged: HoldStagedSegment[]; client_state?: Record<string, unknown>; presign_parts?: number },
  expected: { readonly writer: { readonly size: number }; readonly parts: readonly HoldPart[]; readonly staged: readonly HoldStagedSegment[]; readonly epoch: number | undefined },
): Promise<HoldUploadView> {
  const { hold, did } = ctx;
  try {
    return await hold.uploadProgress(did, upload.uploadName, upload.uploadId, progress, expected.epoch);
  } catch (err) {
    if (!isHoldError(err, 'UPLOAD_STATE_CONFLICT')) throw toDriverError(err);
    const status = await mappingHoldErrors(() => hold.uploadStatus(did, upload.uploadName, upload.uploadId));
    if ((status.writer_epoch ?? 0) > (expected.epoch ?? 0) || !samePartList(status.parts, expected.parts)) throw toDriverError(err);
    if (status.size === expected.writer.size && sameStagedSegments(status.staged, expected.staged)) return status;
    if (status.staged.length > 0 || progress.parts.length === 0) throw toDriverError(err);
    return mappingHoldErrors(() => hold.uploadProgress(did, upload.uploadName, upload.uploadId, { ...progress, base_size: status.size, parts: [] }, expected.epoch));
  }
}
