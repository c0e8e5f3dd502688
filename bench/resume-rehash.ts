/**
 * What a cross-process resume costs at commit: a writer rebuilt from the
 * hold's state has no running sha256 and reads the assembled object back once.
 * Compares commit time for the same blob with a live hash and after a resume
 * in a fresh driver.
 */
import { createHash, randomBytes } from 'node:crypto';
import createHoldDriver from '../src/driver/index.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold } from '../test/support/hold-harness.ts';

const MiB = 1024 * 1024;

export interface ResumeRehashResult {
  blobBytes: number;
  commitLiveHashSeconds: number;
  commitAfterResumeSeconds: number;
  rehashMiBps: number;
}

export async function runResumeRehash(options: { quick: boolean }): Promise<ResumeRehashResult> {
  const blobBytes = (options.quick ? 32 : 256) * MiB;
  const hold = await startTestHold('s3');
  const config = { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKey: hold.keys.privateKey, provider: 'minio' as const, partSize: 16 * MiB };
  const block = randomBytes(MiB);
  const timings: number[] = [];
  try {
    for (const crossProcess of [false, true]) {
      const first = createHoldDriver(config);
      const writer = await first.blobStore(DIDS.owner).create();
      const hash = createHash('sha256');
      // Vary one byte per run so the two blobs differ.
      const tweak = Buffer.from(block);
      tweak[0] = crossProcess ? 1 : 0;
      for (let written = 0; written < blobBytes; written += MiB) {
        hash.update(tweak);
        await writer.write(tweak);
      }
      await writer.close();
      const second = crossProcess ? createHoldDriver(config) : first;
      const resumed = await second.blobStore(DIDS.owner).resume(writer.id);
      const started = process.hrtime.bigint();
      await resumed.commit({ digest: `sha256:${hash.digest('hex')}`, size: blobBytes });
      timings.push(Number(process.hrtime.bigint() - started) / 1e9);
      await first.close();
      await second.close();
    }
  } finally {
    await hold.close();
  }
  const [live, resumed] = timings as [number, number];
  return {
    blobBytes,
    commitLiveHashSeconds: round(live),
    commitAfterResumeSeconds: round(resumed),
    rehashMiBps: round(blobBytes / MiB / Math.max(0.001, resumed - live)),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
