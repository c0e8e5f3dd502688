/** The targets, evaluated against one comparison. */
import type { ComparisonResult } from './compare.ts';
import { round } from './measure.ts';
import { MiB, size } from './units.ts';
import { chunkedLabel } from './workloads/chunked-push.ts';

export interface Goal {
  id: string;
  label: string;
  /** What the value is: a ratio (holdfast ÷ other, or large ÷ small) or an absolute figure. */
  kind: 'ratio' | 'MiB' | 'bytes per GiB' | 'requests per PATCH';
  value: number;
  limit: number;
  /** 'max': the value must not exceed the limit; 'min': it must reach it. */
  bound: 'max' | 'min';
  met: boolean;
}

/** The PATCH size the large chunked push is held to. */
const GOAL_CHUNK_BYTES = 8 * MiB;

function goal(id: string, label: string, kind: Goal['kind'], value: number | undefined, bound: Goal['bound'], limit: number): Goal {
  const figure = value ?? Number.NaN;
  return { id, label, kind, value: round(figure), limit, bound, met: bound === 'max' ? figure <= limit : figure >= limit };
}

export function evaluateGoals(result: ComparisonResult): Goal[] {
  const { sizes } = result;
  const chunked = `Chunked push, ${chunkedLabel(sizes.chunkedBytes, sizes.chunkBytes)}`;
  const large = result.largeChunked.find((figures) => figures.chunkBytes === GOAL_CHUNK_BYTES);
  const largeChunked = `Chunked push, ${chunkedLabel(sizes.largeChunkedBytes, GOAL_CHUNK_BYTES)}`;
  return [
    goal('streamedVsDirect', 'Docker-style push ÷ direct S3', 'ratio', result.streamedPush.holdfastRatio.direct, 'max', 1.25),
    goal('streamedVsDistribution', 'Docker-style push ÷ distribution', 'ratio', result.streamedPush.holdfastRatio.distribution, 'max', 0.8),
    goal('chunkedVsDirect', `${chunked} ÷ direct S3`, 'ratio', result.chunkedPush.holdfastRatio.direct, 'max', 1.5),
    goal('chunkedVsDistribution', `${chunked} ÷ distribution`, 'ratio', result.chunkedPush.holdfastRatio.distribution, 'max', 0.5),
    goal('largeChunkedVsDirect', `${largeChunked} ÷ direct S3`, 'ratio', large?.push.holdfastRatio.direct, 'max', 1.5),
    goal('largeChunkedVsDistribution', `${largeChunked} ÷ distribution`, 'ratio', large?.push.holdfastRatio.distribution, 'max', 0.5),
    // Counted over the whole push, POST and commit included: one request per PATCH, and little else.
    goal('holdRequestsPerPatch', `Hold requests per ${size(GOAL_CHUNK_BYTES)} PATCH, ${size(sizes.largeChunkedBytes)} push`, 'requests per PATCH', large?.holdfastPerPatch.holdRequests, 'max', 1.1),
    goal('commitLargeVsSmall', `Commit, large ÷ ${size(sizes.commitSmallBytes)} blob`, 'ratio', result.commit.holdfastLargeOverSmall, 'max', 3),
    goal('commitSmallVsDistribution', `Commit, ${size(sizes.commitSmallBytes)} blob ÷ distribution`, 'ratio', result.commit.small.holdfastRatio.distribution, 'max', 1),
    goal('headBlobVsDistribution', 'HEAD blob requests/s ÷ distribution', 'ratio', result.pull.headBlobRps.holdfastRatio.distribution, 'min', 2),
    goal('getManifestVsDistribution', 'GET manifest requests/s ÷ distribution', 'ratio', result.pull.getManifestRps.holdfastRatio.distribution, 'min', 2),
    // Held to distribution's peak in the same run: both registries see the same pushes on the same machine.
    goal('peakRss', 'Registry peak RSS, concurrent pushes, against distribution', 'MiB', result.concurrentPush.registryPeakRssMiB.median.holdfast, 'max', round(result.concurrentPush.registryPeakRssMiB.median.distribution ?? Number.NaN)),
    // Blob bytes through the hold would each be read and written: 2 GiB of I/O per GiB.
    // API calls alone stay far below 1 % of that.
    goal('holdIo', 'Hold process I/O per GiB pushed', 'bytes per GiB', result.holdCost.holdIoBytesPerGiB, 'max', Math.round(0.01 * 1024 * MiB)),
  ];
}
