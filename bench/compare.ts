/**
 * Holdfast side by side with a direct S3 multipart upload (the floor) and with
 * CNCF distribution (what users would run instead), all on one MinIO, in one
 * run. Every workload runs each target once per round, in a rotating order;
 * ratios are taken within a round and their median reported, so drift on a
 * shared machine cancels out pair by pair.
 */
import { startMinio } from '../test/support/minio.ts';
import { BlobSource } from './blob-source.ts';
import { holdRequestCount, processIoBytes, round, sampleRss } from './measure.ts';
import { benchAgent, pushStreamed, type PushTiming } from './oci-push.ts';
import { record, rotated, series, type PerTarget, type Series, type TargetName } from './series.ts';
import { DirectS3 } from './targets/direct.ts';
import { DISTRIBUTION_DEFAULT_CHUNK_SIZE, DISTRIBUTION_VERSION, startDistribution } from './targets/distribution.ts';
import { startHoldfast, type HoldfastTarget } from './targets/holdfast.ts';
import type { OciTarget } from './targets/target.ts';
import { MiB } from './units.ts';
import { ChunkedPushWorkload, directPusher, registryPusher, sequentialDirectPusher, type ChunkedFigures } from './workloads/chunked-push.ts';
import { measurePull, pushPullImage, type PullFigures, type PullImage } from './workloads/pull.ts';

/** The driver's defaults for the minio provider: what holdfast runs with here. */
const HOLDFAST_PART_SIZE = 16 * MiB;
const HOLDFAST_PARTS_IN_FLIGHT = 4;
const HOLDFAST_MEMORY_BUDGET = 512 * MiB;
const REPO = 'alice/bench';

export interface Sizes {
  rounds: number;
  streamedBytes: number;
  chunkedBytes: number;
  chunkBytes: number;
  /** The large chunked pushes: one blob size, pushed in PATCHes of each of these sizes. */
  largeChunkedBytes: number;
  largeChunkBytes: number[];
  commitSmallBytes: number;
  concurrentUploads: number;
  concurrentBytes: number;
  pullConnections: number;
  pullSeconds: number;
}

export function sizesFor(quick: boolean): Sizes {
  return {
    rounds: quick ? 1 : 3,
    streamedBytes: (quick ? 64 : 1024) * MiB,
    chunkedBytes: (quick ? 32 : 256) * MiB,
    chunkBytes: 8 * MiB,
    largeChunkedBytes: (quick ? 64 : 1024) * MiB,
    largeChunkBytes: [8 * MiB, 16 * MiB],
    commitSmallBytes: MiB,
    concurrentUploads: quick ? 4 : 16,
    concurrentBytes: (quick ? 16 : 128) * MiB,
    pullConnections: 64,
    pullSeconds: quick ? 2 : 10,
  };
}

export interface ComparisonResult {
  sizes: Sizes;
  versions: { distribution: string; holdfastPartSize: number; distributionDefaultChunkSize: number; partsInFlight: number; memoryBudget: number };
  streamedPush: Series;
  chunkedPush: Series;
  /** Distribution at its default chunk size only: it takes long enough as it is. */
  largeChunked: ChunkedFigures[];
  commit: { small: Series; large: Series; holdfastLargeOverSmall: number; distributionLargeOverSmall: number };
  concurrentPush: { wall: Series; registryPeakRssMiB: Series };
  pull: { headBlobRps: Series; getManifestRps: Series; getBlobRps: Series; getBlobP50Ms: Series; getBlobP99Ms: Series; unexpectedResponses: number };
  holdCost: { bytesPushed: number; holdIoBytes: number; holdIoBytesPerGiB: number; holdRequests: number; holdRequestsPerGiB: number };
}

export async function runComparison(options: { quick: boolean; log?: (line: string) => void }): Promise<ComparisonResult> {
  const log = options.log ?? (() => {});
  const sizes = sizesFor(options.quick);
  const minio = await startMinio();
  const started: { stop(): Promise<void> }[] = [];
  const direct = new DirectS3(minio, { prefix: 'bench-direct', partSize: HOLDFAST_PART_SIZE, partsInFlight: HOLDFAST_PARTS_IN_FLIGHT });
  try {
    const holdfast: HoldfastTarget = await startHoldfast(minio, { prefix: 'bench-holdfast' });
    started.push(holdfast);
    const distribution = await startDistribution(minio, { name: 'distribution', prefix: 'bench-distribution' });
    started.push(distribution);
    const distributionSameChunk = await startDistribution(minio, { name: 'distributionSameChunk', prefix: 'bench-distribution-same-chunk', chunkSize: HOLDFAST_PART_SIZE });
    started.push(distributionSameChunk);
    const registries: OciTarget[] = [holdfast, distribution, distributionSameChunk];
    type Pusher = { name: TargetName; push: (blob: BlobSource) => Promise<PushTiming> };
    const streamers: Pusher[] = [
      { name: 'direct', push: (blob) => direct.upload(blob) },
      ...registries.map((target) => ({ name: target.name as TargetName, push: (blob: BlobSource) => pushStreamed(target.baseUrl, REPO, blob) })),
    ];

    const streamed: PerTarget<number[]> = {};
    const commitLarge: PerTarget<number[]> = {};
    const commitSmall: PerTarget<number[]> = {};
    const chunked = new ChunkedPushWorkload({ blobBytes: sizes.chunkedBytes, chunkBytes: sizes.chunkBytes, holdUrl: holdfast.holdUrl });
    const chunkers = [directPusher(direct), ...registries.map((target) => registryPusher(target, REPO))];
    const largeChunked = sizes.largeChunkBytes.map((chunkBytes) => new ChunkedPushWorkload({ blobBytes: sizes.largeChunkedBytes, chunkBytes, holdUrl: holdfast.holdUrl }));
    const largeChunkers = [
      directPusher(direct),
      sequentialDirectPusher(direct, minio.pid),
      registryPusher(holdfast, REPO, { registry: holdfast.pid, hold: holdfast.holdPid, storage: minio.pid }),
      registryPusher(distribution, REPO, { registry: distribution.pid, storage: minio.pid }),
    ];
    const concurrentWall: PerTarget<number[]> = {};
    const concurrentRss: PerTarget<number[]> = {};
    const pullRuns: Record<keyof Omit<PullFigures, 'unexpected'>, PerTarget<number[]>> = {
      headBlobRps: {},
      getManifestRps: {},
      getBlobRps: {},
      getBlobP50Ms: {},
      getBlobP99Ms: {},
    };
    let unexpectedPulls = 0;
    const holdCost = { bytesPushed: 0, holdIoBytes: 0, holdRequests: 0 };
    const pullImages = new Map<string, PullImage>();
    for (const target of [holdfast, distribution]) pullImages.set(target.name, await pushPullImage(target.baseUrl, REPO));

    for (let roundIndex = 0; roundIndex < sizes.rounds; roundIndex++) {
      log(`round ${roundIndex + 1} of ${sizes.rounds}`);
      for (const { name, push } of rotated(streamers, roundIndex)) {
        const blob = new BlobSource(sizes.streamedBytes);
        blob.digest();
        const holdBefore = name === 'holdfast' ? { io: await processIoBytes(holdfast.holdPid), requests: await holdRequestCount(holdfast.holdUrl) } : undefined;
        const timing = await push(blob);
        if (holdBefore) {
          holdCost.bytesPushed += blob.size;
          holdCost.holdIoBytes += (await processIoBytes(holdfast.holdPid)) - holdBefore.io;
          holdCost.holdRequests += (await holdRequestCount(holdfast.holdUrl)) - holdBefore.requests;
        }
        record(streamed, name, timing.totalMs);
        record(commitLarge, name, timing.commitMs);
        log(`  streamed push ${name}: ${Math.round(timing.totalMs)} ms (commit ${Math.round(timing.commitMs)} ms)`);
      }
      for (const { name, push } of rotated(streamers, roundIndex)) {
        const blob = new BlobSource(sizes.commitSmallBytes);
        blob.digest();
        record(commitSmall, name, (await push(blob)).commitMs);
      }
      await chunked.round(chunkers, roundIndex, (line) => log(`  ${line}`));
      for (const workload of largeChunked) await workload.round(largeChunkers, roundIndex, (line) => log(`  ${line}`));
      for (const { name, push } of rotated(streamers, roundIndex)) {
        const blobs = Array.from({ length: sizes.concurrentUploads }, () => new BlobSource(sizes.concurrentBytes));
        for (const blob of blobs) blob.digest();
        const target = registries.find((candidate) => candidate.name === name);
        const sampler = target ? sampleRss(target.pid) : undefined;
        const begin = performance.now();
        await Promise.all(blobs.map((blob) => push(blob)));
        record(concurrentWall, name, performance.now() - begin);
        if (sampler) record(concurrentRss, name, await sampler.stop());
        log(`  ${sizes.concurrentUploads} concurrent pushes ${name}: ${Math.round(performance.now() - begin)} ms`);
      }
      for (const target of rotated([holdfast, distribution], roundIndex)) {
        const figures = await measurePull(target.baseUrl, pullImages.get(target.name) as PullImage, {
          connections: sizes.pullConnections,
          seconds: sizes.pullSeconds,
          headStatus: target === holdfast ? 200 : 307,
        });
        unexpectedPulls += figures.unexpected;
        for (const key of Object.keys(pullRuns) as (keyof typeof pullRuns)[]) record(pullRuns[key], target.name as TargetName, figures[key]);
        log(`  pull ${target.name}: HEAD blob ${Math.round(figures.headBlobRps)}/s, GET manifest ${Math.round(figures.getManifestRps)}/s, GET blob p50 ${figures.getBlobP50Ms} ms`);
      }
    }

    const large = series('ms', commitLarge);
    const small = series('ms', commitSmall);
    const gib = holdCost.bytesPushed / 1024 ** 3;
    return {
      sizes,
      versions: {
        distribution: DISTRIBUTION_VERSION,
        holdfastPartSize: HOLDFAST_PART_SIZE,
        distributionDefaultChunkSize: DISTRIBUTION_DEFAULT_CHUNK_SIZE,
        partsInFlight: HOLDFAST_PARTS_IN_FLIGHT,
        memoryBudget: HOLDFAST_MEMORY_BUDGET,
      },
      streamedPush: series('ms', streamed),
      chunkedPush: chunked.figures().push,
      largeChunked: largeChunked.map((workload) => workload.figures()),
      commit: {
        small,
        large,
        holdfastLargeOverSmall: round((large.median.holdfast as number) / (small.median.holdfast as number)),
        distributionLargeOverSmall: round((large.median.distribution as number) / (small.median.distribution as number)),
      },
      concurrentPush: { wall: series('ms', concurrentWall), registryPeakRssMiB: series('MiB', concurrentRss) },
      pull: {
        headBlobRps: series('requests/s', pullRuns.headBlobRps),
        getManifestRps: series('requests/s', pullRuns.getManifestRps),
        getBlobRps: series('requests/s', pullRuns.getBlobRps),
        getBlobP50Ms: series('ms', pullRuns.getBlobP50Ms),
        getBlobP99Ms: series('ms', pullRuns.getBlobP99Ms),
        unexpectedResponses: unexpectedPulls,
      },
      holdCost: {
        ...holdCost,
        holdIoBytesPerGiB: Math.round(holdCost.holdIoBytes / gib),
        holdRequestsPerGiB: round(holdCost.holdRequests / gib, 1),
      },
    };
  } finally {
    direct.close();
    await Promise.allSettled(started.map((target) => target.stop()));
    await minio.stop();
    await benchAgent.close().catch(() => {});
  }
}
