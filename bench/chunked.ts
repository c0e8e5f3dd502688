/**
 * The chunked PATCH path alone, where Docker-style chunked pushes spend their
 * time: one blob pushed in fixed PATCHes to holdfast and to CNCF distribution
 * on one MinIO, each PATCH timed, and what every PATCH costs holdfast in hold
 * calls (by endpoint) and in the hold's own S3 calls (by operation), read from
 * the hold's /metrics around each push.
 *
 *   npm run bench:chunked -- [--size-mib 1024] [--chunks-mib 8,16] [--rounds 3]
 *
 * Prints a table and writes bench/results/chunked.json. Speeds are reported,
 * never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { callsSince, holdCalls } from '../test/support/hold-metrics.ts';
import { startMinio } from '../test/support/minio.ts';
import { BlobSource } from './blob-source.ts';
import { median, round } from './measure.ts';
import { benchAgent, pushChunked } from './oci-push.ts';
import { startDistribution } from './targets/distribution.ts';
import { startHoldfast } from './targets/holdfast.ts';
import type { OciTarget } from './targets/target.ts';

const MiB = 1024 * 1024;
const REPO = 'alice/chunked';

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const sizeBytes = Number(flag('size-mib', '1024')) * MiB;
const chunkSizes = flag('chunks-mib', '8,16')
  .split(',')
  .map((value) => Number(value) * MiB);
const rounds = Number(flag('rounds', '3'));

/** The hold's API requests ("hold /path") and its own S3 calls ("s3 Operation"), in one map. */
async function holdCounters(holdUrl: string): Promise<Map<string, number>> {
  const { requests, storage } = await holdCalls(holdUrl);
  return new Map([...[...requests].map(([endpoint, count]) => [`hold ${endpoint}`, count] as const), ...[...storage].map(([operation, count]) => [`s3 ${operation}`, count] as const)]);
}

/** Each counter's growth per PATCH, sorted by name. */
function perPatch(after: Map<string, number>, before: Map<string, number>, patches: number): Record<string, number> {
  const grown = Object.entries(callsSince(after, before)).sort(([a], [b]) => a.localeCompare(b));
  return Object.fromEntries(grown.map(([key, delta]) => [key, round(delta / patches, 2)]));
}

interface ChunkFigures {
  chunkMiB: number;
  patches: number;
  patchMedianMs: { holdfast: number; distribution: number };
  pushMedianMs: { holdfast: number; distribution: number };
  /** holdfast ÷ distribution, the median of the per-round ratios of whole pushes. */
  ratio: number;
  /** Per PATCH over the whole push (POST and commit included): hold calls and the hold's S3 calls. */
  holdfastCallsPerPatch: Record<string, number>;
}

const minio = await startMinio();
const started: { stop(): Promise<void> }[] = [];
try {
  const holdfast = await startHoldfast(minio, { prefix: 'bench-chunked-holdfast' });
  started.push(holdfast);
  const distribution = await startDistribution(minio, { name: 'distribution', prefix: 'bench-chunked-distribution' });
  started.push(distribution);
  const results: ChunkFigures[] = [];
  for (const chunkSize of chunkSizes) {
    const patches = Math.ceil(sizeBytes / chunkSize);
    const patchMs: Record<string, number[]> = { holdfast: [], distribution: [] };
    const pushMs: Record<string, number[]> = { holdfast: [], distribution: [] };
    let calls: Record<string, number> = {};
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      const order: OciTarget[] = roundIndex % 2 === 0 ? [holdfast, distribution] : [distribution, holdfast];
      for (const target of order) {
        const blob = new BlobSource(sizeBytes);
        blob.digest();
        const before = target === holdfast ? await holdCounters(holdfast.holdUrl) : undefined;
        const timing = await pushChunked(target.baseUrl, REPO, blob, chunkSize, { onPatch: (ms) => patchMs[target.name]?.push(ms) });
        pushMs[target.name]?.push(timing.totalMs);
        if (before) calls = perPatch(await holdCounters(holdfast.holdUrl), before, patches);
        console.log(`${chunkSize / MiB} MiB PATCHes, round ${roundIndex + 1}, ${target.name}: ${Math.round(timing.totalMs)} ms`);
      }
    }
    const ratios = pushMs.holdfast?.map((value, index) => value / (pushMs.distribution?.[index] as number)) ?? [];
    results.push({
      chunkMiB: chunkSize / MiB,
      patches,
      patchMedianMs: { holdfast: round(median(patchMs.holdfast ?? []), 1), distribution: round(median(patchMs.distribution ?? []), 1) },
      pushMedianMs: { holdfast: Math.round(median(pushMs.holdfast ?? [])), distribution: Math.round(median(pushMs.distribution ?? [])) },
      ratio: round(median(ratios)),
      holdfastCallsPerPatch: calls,
    });
  }
  console.log(`\n${sizeBytes / MiB} MiB pushed in PATCHes, ${rounds} rounds (medians)`);
  console.log('| PATCH | per PATCH holdfast | per PATCH distribution | push holdfast | push distribution | holdfast ÷ distribution |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const result of results) {
    console.log(
      `| ${result.chunkMiB} MiB | ${result.patchMedianMs.holdfast} ms | ${result.patchMedianMs.distribution} ms | ${result.pushMedianMs.holdfast} ms | ${result.pushMedianMs.distribution} ms | ${result.ratio}× |`,
    );
  }
  for (const result of results) console.log(`holdfast calls per ${result.chunkMiB} MiB PATCH:`, JSON.stringify(result.holdfastCallsPerPatch));
  const out = path.join(import.meta.dirname, 'results', 'chunked.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), sizeMiB: sizeBytes / MiB, rounds, results }, null, 2)}\n`);
} finally {
  await Promise.allSettled(started.map((target) => target.stop()));
  await minio.stop();
  await benchAgent.close().catch(() => {});
}
