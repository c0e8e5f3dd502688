/**
 * One blob size pushed in fixed PATCHes, once per target per round, every
 * PATCH timed. Around each holdfast push the hold's /metrics are read, so the
 * figures also say what a PATCH costs holdfast: hold API requests by endpoint
 * and the hold's own S3 calls by operation, over whole pushes (POST and commit
 * included) divided by the PATCHes. The part bytes go from the registry to S3
 * through presigned URLs and are not among those calls.
 */
import { callsSince, holdCalls } from '../../test/support/hold-metrics.ts';
import { BlobSource } from '../blob-source.ts';
import { median, round } from '../measure.ts';
import { pushChunked, type PushTiming } from '../oci-push.ts';
import { record, rotated, series, type PerTarget, type Series, type TargetName } from '../series.ts';
import type { DirectS3 } from '../targets/direct.ts';
import type { OciTarget } from '../targets/target.ts';
import { size } from '../units.ts';

/** "1 GiB in 8 MiB PATCHes". */
export function chunkedLabel(blobBytes: number, chunkBytes: number): string {
  return `${size(blobBytes)} in ${size(chunkBytes)} PATCHes`;
}

export interface ChunkedPusher {
  name: TargetName;
  push(blob: BlobSource, chunkBytes: number, onPatch: (ms: number) => void): Promise<PushTiming>;
}

export function registryPusher(target: OciTarget, repo: string): ChunkedPusher {
  return { name: target.name as TargetName, push: (blob, chunkBytes, onPatch) => pushChunked(target.baseUrl, repo, blob, chunkBytes, { onPatch }) };
}

/** The floor: the same blob as one S3 multipart upload in the direct target's own parts (so no PATCHes). */
export function directPusher(direct: DirectS3): ChunkedPusher {
  return { name: 'direct', push: (blob) => direct.upload(blob) };
}

/** Calls per PATCH over whole holdfast pushes: in all, and by hold endpoint or S3 operation. */
export interface PatchCosts {
  holdRequests: number;
  s3Calls: number;
  holdRequestsByEndpoint: Record<string, number>;
  s3CallsByOperation: Record<string, number>;
}

export interface ChunkedFigures {
  blobBytes: number;
  chunkBytes: number;
  /** PATCHes in one push. */
  patches: number;
  /** Whole pushes, POST to the 201 of the PUT. */
  push: Series;
  /** The median of every PATCH of every round, per registry. */
  patchMedianMs: PerTarget<number>;
  holdfastPerPatch: PatchCosts;
}

export class ChunkedPushWorkload {
  readonly blobBytes: number;
  readonly chunkBytes: number;
  readonly #holdUrl: string;
  readonly #pushMs: PerTarget<number[]> = {};
  readonly #patchMs: PerTarget<number[]> = {};
  readonly #holdRequests = new Map<string, number>();
  readonly #s3Calls = new Map<string, number>();
  #holdfastPushes = 0;

  constructor(options: { blobBytes: number; chunkBytes: number; holdUrl: string }) {
    this.blobBytes = options.blobBytes;
    this.chunkBytes = options.chunkBytes;
    this.#holdUrl = options.holdUrl;
  }

  /** One push per target, in the round's rotated order. */
  async round(pushers: ChunkedPusher[], roundIndex: number, log: (line: string) => void): Promise<void> {
    for (const { name, push } of rotated(pushers, roundIndex)) {
      const blob = new BlobSource(this.blobBytes);
      blob.digest();
      const before = name === 'holdfast' ? await holdCalls(this.#holdUrl) : undefined;
      const timing = await push(blob, this.chunkBytes, (ms) => record(this.#patchMs, name, ms));
      record(this.#pushMs, name, timing.totalMs);
      if (before) {
        const after = await holdCalls(this.#holdUrl);
        addTo(this.#holdRequests, callsSince(after.requests, before.requests));
        addTo(this.#s3Calls, callsSince(after.storage, before.storage));
        this.#holdfastPushes++;
      }
      log(`chunked push, ${chunkedLabel(this.blobBytes, this.chunkBytes)}, ${name}: ${Math.round(timing.totalMs)} ms`);
    }
  }

  figures(): ChunkedFigures {
    const patches = Math.ceil(this.blobBytes / this.chunkBytes);
    const counted = patches * this.#holdfastPushes;
    const requests = perPatch(this.#holdRequests, counted);
    const s3 = perPatch(this.#s3Calls, counted);
    return {
      blobBytes: this.blobBytes,
      chunkBytes: this.chunkBytes,
      patches,
      push: series('ms', this.#pushMs),
      patchMedianMs: Object.fromEntries(Object.entries(this.#patchMs).map(([name, values]) => [name, round(median(values), 1)])),
      holdfastPerPatch: { holdRequests: requests.all, s3Calls: s3.all, holdRequestsByEndpoint: requests.byName, s3CallsByOperation: s3.byName },
    };
  }
}

function addTo(totals: Map<string, number>, grown: Record<string, number>): void {
  for (const [name, delta] of Object.entries(grown)) totals.set(name, (totals.get(name) ?? 0) + delta);
}

function perPatch(totals: Map<string, number>, patches: number): { all: number; byName: Record<string, number> } {
  let all = 0;
  for (const count of totals.values()) all += count;
  const sorted = [...totals].sort(([a], [b]) => a.localeCompare(b));
  return { all: round(all / patches), byName: Object.fromEntries(sorted.map(([name, count]) => [name, round(count / patches)])) };
}
