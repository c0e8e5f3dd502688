/**
 * The shape of bench/results/*.json. Every run validates its report against
 * it before writing, and CI checks the --quick report with it: every field
 * present and a finite number where a figure belongs. Speeds are never checked.
 */
import { z } from 'zod';
import type { TargetName } from './series.ts';

const figure = z.number();
const count = z.number().int().min(0);

function perTarget<T extends z.ZodType>(names: TargetName[], value: T) {
  return z.object(Object.fromEntries(names.map((name) => [name, value])) as Record<TargetName, T>).strict();
}

function series(names: TargetName[]) {
  const others = names.filter((name) => name !== 'holdfast');
  return z
    .object({
      unit: z.string().min(1),
      runs: perTarget(names, z.array(figure).min(1)),
      median: perTarget(names, figure),
      holdfastRatio: perTarget(others, figure),
    })
    .strict();
}

const ALL: TargetName[] = ['direct', 'holdfast', 'distribution', 'distributionSameChunk'];
const REGISTRIES: TargetName[] = ['holdfast', 'distribution', 'distributionSameChunk'];
const PULLED: TargetName[] = ['holdfast', 'distribution'];
const LARGE_CHUNKED_REGISTRIES: TargetName[] = ['holdfast', 'distribution'];
const LARGE_CHUNKED_TIMED: TargetName[] = ['directSequential', ...LARGE_CHUNKED_REGISTRIES];
const LARGE_CHUNKED: TargetName[] = ['direct', ...LARGE_CHUNKED_TIMED];

const callsPerPatch = z.record(z.string().min(1), figure.min(0));

const largeChunked = z
  .object({
    blobBytes: count,
    chunkBytes: count,
    patches: count.min(1),
    push: series(LARGE_CHUNKED),
    patchMedianMs: perTarget(LARGE_CHUNKED_TIMED, figure),
    holdfastPerPatch: z
      .object({ holdRequests: figure.min(0), s3Calls: figure.min(0), holdRequestsByEndpoint: callsPerPatch, s3CallsByOperation: callsPerPatch })
      .strict(),
    cpuPerPatchMs: perTarget(LARGE_CHUNKED_TIMED, z.record(z.string().min(1), figure.min(0))),
  })
  .strict();

const comparison = z
  .object({
    sizes: z
      .object({
        rounds: count,
        streamedBytes: count,
        chunkedBytes: count,
        chunkBytes: count,
        largeChunkedBytes: count,
        largeChunkBytes: z.array(count).min(1),
        commitSmallBytes: count,
        concurrentUploads: count,
        concurrentBytes: count,
        pullConnections: count,
        pullSeconds: figure,
      })
      .strict(),
    versions: z
      .object({ distribution: z.string().min(1), holdfastPartSize: count, distributionDefaultChunkSize: count, partsInFlight: count, memoryBudget: count })
      .strict(),
    streamedPush: series(ALL),
    chunkedPush: series(ALL),
    largeChunked: z.array(largeChunked).min(1),
    commit: z.object({ small: series(ALL), large: series(ALL), holdfastLargeOverSmall: figure, distributionLargeOverSmall: figure }).strict(),
    concurrentPush: z.object({ wall: series(ALL), registryPeakRssMiB: series(REGISTRIES) }).strict(),
    pull: z
      .object({
        headBlobRps: series(PULLED),
        getManifestRps: series(PULLED),
        getBlobRps: series(PULLED),
        getBlobP50Ms: series(PULLED),
        getBlobP99Ms: series(PULLED),
        unexpectedResponses: count,
      })
      .strict(),
    holdCost: z.object({ bytesPushed: count, holdIoBytes: count, holdIoBytesPerGiB: count, holdRequests: count, holdRequestsPerGiB: figure }).strict(),
  })
  .strict();

const goal = z
  .object({
    id: z.string().min(1),
    label: z.string().min(1),
    kind: z.enum(['ratio', 'MiB', 'bytes per GiB', 'requests per PATCH']),
    value: figure,
    limit: figure,
    bound: z.enum(['max', 'min']),
    met: z.boolean(),
  })
  .strict();

const numbers = (fields: string[]) => z.object(Object.fromEntries(fields.map((field) => [field, figure]))).strict();

export const benchReportSchema = z
  .object({
    generatedAt: z.iso.datetime(),
    quick: z.boolean(),
    machine: z.object({ cores: count, cpuModel: z.string(), memoryGiB: count, node: z.string(), os: z.string() }).strict(),
    comparison,
    goals: z.array(goal).length(13),
    driverMemory: numbers(['uploads', 'blobBytes', 'partSize', 'memoryBudget', 'wallSeconds', 'throughputMiBps', 'baselineRssMiB', 'peakRssMiB', 'peakBudgetUsedMiB']),
    resumeRehash: numbers(['blobBytes', 'commitLiveHashSeconds', 'commitAfterResumeSeconds', 'rehashMiBps']),
    load: numbers([
      'pushes',
      'pushBytes',
      'chunkBytes',
      'pullers',
      'pullSeconds',
      'errors',
      'patchP50Ms',
      'patchP99Ms',
      'pullRequests',
      'pullRequestsPerSecond',
      'registryPeakRssMiB',
    ]),
    // Absent from reports made before the web pages.
    pages: z
      .object({
        requestsPerPage: count,
        assetBytes: numbers(['css', 'js']),
        runs: z
          .array(
            z
              .object({
                metadata: z.enum(['sqlite', 'postgres']),
                repositories: count,
                tags: count,
                fillSeconds: figure,
                pages: z.array(z.object({ page: z.string().min(1), url: z.string().min(1), p50Ms: figure, p95Ms: figure, htmlBytes: count }).strict()).min(1),
              })
              .strict(),
          )
          .length(2),
      })
      .strict()
      .optional(),
    // Absent from reports made before events.
    events: z
      .object({
        throughput: z.object({ events: count, repositories: count, seconds: figure, eventsPerSecond: figure, metadata: z.literal('sqlite') }).strict(),
        deadReceiver: z
          .object({ queued: count, simulatedMinutes: count, attempts: count, rssBeforeMiB: figure, rssQueuedMiB: figure, rssAfterMiB: figure, heapBeforeMiB: figure, heapQueuedMiB: figure, heapAfterMiB: figure })
          .strict(),
        push: z.object({ images: count, rounds: count, offMs: figure, onMs: figure, onOverOff: figure, delivered: count }).strict(),
      })
      .strict()
      .optional(),
  })
  .strict();
