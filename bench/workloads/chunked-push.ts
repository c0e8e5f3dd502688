/**
 * One blob size pushed in fixed PATCHes, once per target per round, every
 * PATCH timed. Around each holdfast push the hold's /metrics are read, so the
 * figures also say what a PATCH costs holdfast: hold API requests by endpoint
 * and the hold's own S3 calls by operation, over whole pushes (POST and commit
 * included) divided by the PATCHes. The part bytes go from the registry to S3
 * through presigned URLs and are not among those calls.
 *
 * Beside the registries, the same blob goes straight to S3 one part at a time
 * in parts as large as the PATCHes (`directSequential`): a chunked client
 * waits for each PATCH's answer, and that answer may only come once the bytes
 * are durable, so this is the fastest any registry could answer a PATCH. The
 * CPU every process involved spends per PATCH (user and kernel, from /proc)
 * says where the rest goes on a machine whose cores they share.
 */
import { callsSince, holdCalls } from '../../test/support/hold-metrics.ts';
import { BlobSource } from '../blob-source.ts';
import { median, processCpuMs, round } from '../measure.ts';
import { pushChunked, type PushTiming } from '../oci-push.ts';
import { record, rotated, series, type PerTarget, type Series, type TargetName } from '../series.ts';
import type { DirectS3 } from '../targets/direct.ts';
import type { OciTarget } from '../targets/target.ts';
import { size } from '../units.ts';

/** "1 GiB in 8 MiB PATCHes". */
export function chunkedLabel(blobBytes: number, chunkBytes: number): string {
  return `${size(blobBytes)} in ${size(chunkBytes)} PATCHes`;
}

/** The processes a push runs through, by role, whose CPU is counted. */
export type PushProcesses = Partial<Record<'registry' | 'hold' | 'storage' | 'client', number>>;

export interface ChunkedPusher {
  name: TargetName;
  push(blob: BlobSource, chunkBytes: number, onPatch: (ms: number) => void): Promise<PushTiming>;
  processes?: PushProcesses;
}

/** `processes` without the client, which is this process. */
export function registryPusher(target: OciTarget, repo: string, processes?: PushProcesses): ChunkedPusher {
  return {
    name: target.name as TargetName,
    push: (blob, chunkBytes, onPatch) => pushChunked(target.baseUrl, repo, blob, chunkBytes, { onPatch }),
    ...(processes ? { processes: { ...processes, client: process.pid } } : {}),
  };
}

/** The floor: the same blob as one S3 multipart upload in the direct target's own parts (so no PATCHes). */
export function directPusher(direct: DirectS3): ChunkedPusher {
  return { name: 'direct', push: (blob) => direct.upload(blob) };
}

/** The floor for PATCHes: straight to S3, one part of the PATCH size at a time, each part timed as a PATCH. */
export function sequentialDirectPusher(direct: DirectS3, storagePid: number): ChunkedPusher {
  return {
    name: 'directSequential',
    push: (blob, chunkBytes, onPatch) => direct.uploadSequential(blob, chunkBytes, onPatch),
    processes: { storage: storagePid, client: process.pid },
  };
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
  /** The median of every PATCH (or sequential part) of every round, per target. */
  patchMedianMs: PerTarget<number>;
  holdfastPerPatch: PatchCosts;
  /** CPU ms per PATCH by process role over every round, per target whose processes are known. */
  cpuPerPatchMs: PerTarget<Record<string, number>>;
}

export class ChunkedPushWorkload {
  readonly blobBytes: number;
  readonly chunkBytes: number;
  /** PATCHes in one push. */
  readonly patches: number;
  readonly #holdUrl: string;
  readonly #pushMs: PerTarget<number[]> = {};
  readonly #patchMs: PerTarget<number[]> = {};
  readonly #holdRequests = new Map<string, number>();
  readonly #s3Calls = new Map<string, number>();
  #holdfastPushes = 0;
  readonly #cpuMs: PerTarget<Map<string, number>> = {};
  readonly #cpuPushes: PerTarget<number> = {};

  constructor(options: { blobBytes: number; chunkBytes: number; holdUrl: string }) {
    this.blobBytes = options.blobBytes;
    this.chunkBytes = options.chunkBytes;
    this.patches = Math.ceil(options.blobBytes / options.chunkBytes);
    this.#holdUrl = options.holdUrl;
  }

  /** One push per target, in the round's rotated order. */
  async round(pushers: ChunkedPusher[], roundIndex: number, log: (line: string) => void): Promise<void> {
    for (const { name, push, processes } of rotated(pushers, roundIndex)) {
      const blob = new BlobSource(this.blobBytes);
      blob.digest();
      const before = name === 'holdfast' ? await holdCalls(this.#holdUrl) : undefined;
      const cpuBefore = processes ? await cpuOf(processes) : undefined;
      const timing = await push(blob, this.chunkBytes, (ms) => record(this.#patchMs, name, ms));
      record(this.#pushMs, name, timing.totalMs);
      let cpuNote = '';
      if (processes && cpuBefore) {
        const spent = callsSince(await cpuOf(processes), cpuBefore);
        addTo((this.#cpuMs[name] ??= new Map()), spent);
        this.#cpuPushes[name] = (this.#cpuPushes[name] ?? 0) + 1;
        cpuNote = `; CPU per PATCH: ${Object.entries(spent)
          .map(([role, ms]) => `${role} ${Math.round(ms / this.patches)} ms`)
          .join(', ')}`;
      }
      if (before) {
        const after = await holdCalls(this.#holdUrl);
        addTo(this.#holdRequests, callsSince(after.requests, before.requests));
        addTo(this.#s3Calls, callsSince(after.storage, before.storage));
        this.#holdfastPushes++;
      }
      log(`chunked push, ${chunkedLabel(this.blobBytes, this.chunkBytes)}, ${name}: ${Math.round(timing.totalMs)} ms${cpuNote}`);
    }
  }

  figures(): ChunkedFigures {
    const { patches } = this;
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
      cpuPerPatchMs: Object.fromEntries(
        Object.entries(this.#cpuMs).map(([name, totals]) => {
          const { all, byName } = perPatch(totals, patches * (this.#cpuPushes[name as TargetName] ?? 1));
          return [name, { ...byName, total: round(all, 1) }];
        }),
      ),
    };
  }
}

async function cpuOf(processes: PushProcesses): Promise<Map<string, number>> {
  return new Map(await Promise.all(Object.entries(processes).map(async ([role, pid]) => [role, await processCpuMs(pid)] as const)));
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
