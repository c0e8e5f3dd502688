import type { DigestAlgorithm } from '../core/digest.ts';
import { isHoldError, mappingHoldErrors, toDriverError } from './errors.ts';
import type { HoldPart, HoldStagedSegment, HoldUploadView } from './hold-client.ts';
import type { PartPipeline } from './part-pipeline.ts';
import type { PartSizing } from './part-size.ts';
import type { PartUrls } from './part-urls.ts';
import { DriverError } from './types.ts';
import { presignAhead, type UploadRef, type WriterContext } from './writer-context.ts';

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
}

/**
 * What the hold has recorded of an upload: the durable size, the staged
 * segments and the record's version (its expiry, which every update moves).
 * `record` makes every accepted byte durable and records it.
 */
export class UploadRecord {
  readonly #ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'maxPartsInFlight'>;
  readonly #upload: UploadRef;
  #staged: HoldStagedSegment[];
  #durableSize: number;
  #version: string;

  constructor(
    ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'maxPartsInFlight'>,
    upload: UploadRef,
    recorded: { staged: readonly HoldStagedSegment[]; durableSize: number; expiresAt: string },
  ) {
    this.#ctx = ctx;
    this.#upload = upload;
    this.#staged = [...recorded.staged];
    this.#durableSize = recorded.durableSize;
    this.#version = recorded.expiresAt;
  }

  /** Bytes the hold has recorded as durable. */
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
    const at = { staged: this.#staged, partBytes: parts.partBytes, size: writer.size, tail: source.tail };
    const staged = await stageTail(this.#ctx, this.#upload, at, signal);
    const newParts = parts.unrecorded();
    const clientState = sizing.adopted ? { client_state: { part_size: sizing.base, equal_parts: sizing.equalParts, algorithm: source.algorithm } } : {};
    const view = await sendProgress(
      this.#ctx,
      this.#upload,
      { base_size: this.#durableSize, parts: newParts, staged, ...clientState, presign_parts: presignAhead(this.#ctx) },
      { writer, partCount: parts.recorded.length + newParts.length },
    );
    sizing.recorded();
    source.urls.keep(view.part_urls);
    if (view.size !== writer.size) throw new DriverError('INTERNAL', `the hold recorded ${view.size} bytes, expected ${writer.size}`);
    parts.markRecorded(newParts);
    this.#staged = staged;
    this.#durableSize = view.size;
    this.#version = view.expires_at;
  }
}

/**
 * PUTs the bytes of `tail` that no staged segment holds yet as a new staged
 * segment; resolves to the staged segments after the last part, the new one
 * included. `tail` holds the bytes from `partBytes` to `size`.
 */
async function stageTail(
  ctx: Pick<WriterContext, 'hold' | 'did' | 'transport'>,
  upload: UploadRef,
  at: { staged: readonly HoldStagedSegment[]; partBytes: number; size: number; tail: Buffer },
  signal: AbortSignal,
): Promise<HoldStagedSegment[]> {
  const { hold, did, transport } = ctx;
  const staged = at.staged.filter((segment) => segment.offset >= at.partBytes);
  const stagedEnd = staged.reduce((end, segment) => end + segment.size, at.partBytes);
  if (at.size > stagedEnd) {
    const bytes = at.tail.subarray(stagedEnd - at.partBytes);
    const offset = stagedEnd;
    await transport.put(
      async () => (await mappingHoldErrors(() => hold.putPresignedUrl(did, upload.uploadName, { uploadId: upload.uploadId, offset }))).url,
      bytes,
      'staged',
      signal,
    );
    staged.push({ offset, size: bytes.length });
  }
  return staged;
}

/**
 * Records progress. A conflict can mean our own earlier attempt landed and
 * only its answer was lost; if the hold already holds exactly this state
 * (the writer's size, and `partCount` parts), that is success.
 */
async function sendProgress(
  ctx: Pick<WriterContext, 'hold' | 'did'>,
  upload: UploadRef,
  progress: { base_size: number; parts: HoldPart[]; staged: HoldStagedSegment[]; client_state?: Record<string, unknown>; presign_parts?: number },
  expected: { readonly writer: { readonly size: number }; readonly partCount: number },
): Promise<HoldUploadView> {
  const { hold, did } = ctx;
  try {
    return await hold.uploadProgress(did, upload.uploadName, upload.uploadId, progress);
  } catch (err) {
    if (!isHoldError(err, 'UPLOAD_STATE_CONFLICT')) throw toDriverError(err);
    const status = await mappingHoldErrors(() => hold.uploadStatus(did, upload.uploadName, upload.uploadId));
    if (status.size === expected.writer.size && status.parts.length === expected.partCount) return status;
    throw toDriverError(err);
  }
}
