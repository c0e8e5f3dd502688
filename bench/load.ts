/**
 * Load: concurrent chunked pushes plus pullers against MinIO + hold + registry
 * processes, bounded in count and time. Reports PATCH latency percentiles,
 * pull throughput and the registry's peak RSS (VmHWM). Not a test: nothing
 * here asserts a speed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startMinio } from '../test/support/minio.ts';
import { lifetimePeakRssMiB } from './measure.ts';
import { OciTestClient } from '../test/support/oci-client.ts';
import { STACK_USER, startStack } from '../test/support/stack.ts';

const MiB = 1024 * 1024;
const REPO = `${STACK_USER.handle}/load`;

export interface LoadResult {
  pushes: number;
  pushBytes: number;
  chunkBytes: number;
  pullers: number;
  pullSeconds: number;
  errors: number;
  patchP50Ms: number;
  patchP99Ms: number;
  pullRequests: number;
  pullRequestsPerSecond: number;
  registryPeakRssMiB: number;
}

export async function runLoad(options: { quick: boolean }): Promise<LoadResult> {
  const pushes = options.quick ? 8 : 32;
  const pushBytes = (options.quick ? 16 : 64) * MiB;
  const chunkBytes = 8 * MiB;
  const pullers = options.quick ? 16 : 64;
  const pullSeconds = options.quick ? 10 : 60;
  const minio = await startMinio();
  const stack = await startStack({ minio, prefix: 'bench-load' });
  const base = stack.registries[0] as string;
  const client = new OciTestClient(STACK_USER);
  const block = randomBytes(chunkBytes);
  const patchMs: number[] = [];
  let errors = 0;
  let pullRequests = 0;
  try {
    // Something to pull: one small image.
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    await client.call(base, REPO, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${configDigest}`, { body: config });
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 }, layers: [] }));
    await client.call(base, REPO, 'PUT', `/v2/${REPO}/manifests/latest`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });

    const deadline = Date.now() + pullSeconds * 1000;
    let pushing = true;
    const pull = async () => {
      while (pushing || Date.now() < deadline) {
        if (Date.now() >= deadline) break;
        const head = await client.call(base, REPO, 'HEAD', `/v2/${REPO}/blobs/${configDigest}`).catch(() => undefined);
        const get = await client.call(base, REPO, 'GET', `/v2/${REPO}/manifests/latest`).catch(() => undefined);
        pullRequests += 2;
        if (head?.status !== 200 || get?.status !== 200) errors++;
      }
    };
    const push = async (index: number) => {
      const hash = createHash('sha256');
      const location = await client.start(base, REPO);
      for (let offset = 0; offset < pushBytes; offset += chunkBytes) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(index, 0);
        chunk.writeUInt32BE(offset / chunkBytes, 4);
        hash.update(chunk);
        const started = process.hrtime.bigint();
        const response = await client.patch(base, REPO, location, chunk, offset);
        patchMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        if (response.status !== 202) errors++;
      }
      const put = await client.finish(base, REPO, location, `sha256:${hash.digest('hex')}`);
      if (put.status !== 201) errors++;
    };
    const pullersDone = Promise.all(Array.from({ length: pullers }, pull));
    await Promise.all(Array.from({ length: pushes }, (_, index) => push(index)));
    pushing = false;
    await pullersDone;
    const registryPid = stack.processes.at(-1)?.pid;
    const peakMiB = registryPid ? await lifetimePeakRssMiB(registryPid) : 0;
    patchMs.sort((a, b) => a - b);
    const percentile = (p: number) => Math.round(patchMs[Math.min(patchMs.length - 1, Math.floor((p / 100) * patchMs.length))] ?? 0);
    return {
      pushes,
      pushBytes,
      chunkBytes,
      pullers,
      pullSeconds,
      errors,
      patchP50Ms: percentile(50),
      patchP99Ms: percentile(99),
      pullRequests,
      pullRequestsPerSecond: Math.round(pullRequests / pullSeconds),
      registryPeakRssMiB: Math.round(peakMiB),
    };
  } finally {
    await stack.stop();
    await minio.stop();
  }
}
