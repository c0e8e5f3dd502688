/**
 * The chunked PATCH path alone, where Docker-style chunked pushes spend their
 * time: one blob pushed in fixed PATCHes to holdfast and to CNCF distribution
 * on one MinIO, each PATCH timed, and what every PATCH costs holdfast in hold
 * calls (by endpoint) and in the hold's own S3 calls (by operation), read from
 * the hold's /metrics around each push. Beside them, the same blob straight to
 * MinIO one part at a time (the fastest a PATCH can be answered), and the CPU
 * each process spends per PATCH.
 *
 *   npm run bench:chunked -- [--size-mib 1024] [--chunks-mib 8,16] [--rounds 3]
 *
 * Prints tables and writes bench/results/chunked.json. `npm run bench` makes
 * the same measurement (bench/workloads/chunked-push.ts) beside direct S3.
 * Speeds are reported, never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startMinio } from '../test/support/minio.ts';
import { benchAgent } from './oci-push.ts';
import { cpuTable, patchTable } from './report.ts';
import { DirectS3 } from './targets/direct.ts';
import { startDistribution } from './targets/distribution.ts';
import { startHoldfast } from './targets/holdfast.ts';
import { MiB } from './units.ts';
import { ChunkedPushWorkload, chunkedLabel, registryPusher, sequentialDirectPusher } from './workloads/chunked-push.ts';

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

const minio = await startMinio();
const direct = new DirectS3(minio, { prefix: 'bench-chunked-direct', partSize: 8 * MiB, partsInFlight: 1 });
const started: { stop(): Promise<void> }[] = [];
try {
  const holdfast = await startHoldfast(minio, { prefix: 'bench-chunked-holdfast' });
  started.push(holdfast);
  const distribution = await startDistribution(minio, { name: 'distribution', prefix: 'bench-chunked-distribution' });
  started.push(distribution);
  const pushers = [
    sequentialDirectPusher(direct, minio.pid),
    registryPusher(holdfast, REPO, { registry: holdfast.pid, hold: holdfast.holdPid, storage: minio.pid }),
    registryPusher(distribution, REPO, { registry: distribution.pid, storage: minio.pid }),
  ];
  const workloads = chunkSizes.map((chunkBytes) => new ChunkedPushWorkload({ blobBytes: sizeBytes, chunkBytes, holdUrl: holdfast.holdUrl }));
  for (const workload of workloads) {
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      await workload.round(pushers, roundIndex, (line) => console.log(`round ${roundIndex + 1}, ${line}`));
    }
  }
  const results = workloads.map((workload) => workload.figures());
  console.log(`\n${rounds} rounds (medians)`);
  console.log('| PATCHes | push, holdfast | push, distribution | holdfast ÷ distribution |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const { blobBytes, chunkBytes, push } of results) {
    console.log(`| ${chunkedLabel(blobBytes, chunkBytes)} | ${Math.round(push.median.holdfast ?? Number.NaN)} ms | ${Math.round(push.median.distribution ?? Number.NaN)} ms | ${push.holdfastRatio.distribution}× |`);
  }
  console.log(`\n${patchTable(results).join('\n')}`);
  console.log(`\n${cpuTable(results).join('\n')}`);
  const out = path.join(import.meta.dirname, 'results', 'chunked.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), sizeMiB: sizeBytes / MiB, rounds, results }, null, 2)}\n`);
} finally {
  direct.close();
  await Promise.allSettled(started.map((target) => target.stop()));
  await minio.stop();
  await benchAgent.close().catch(() => {});
}
