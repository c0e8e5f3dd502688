/**
 * Driver throughput and peak RSS for concurrent uploads against the memory
 * budget: 16 concurrent 128 MiB uploads with 64 MiB parts (`--quick`: 4 × 32
 * MiB with 16 MiB parts), through a hold on a real MinIO. The hold runs in
 * this process too; in S3 mode it carries no blob bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import createHoldDriver from '../src/driver/index.ts';
import { DIDS, AUDIENCE, ISSUER, startTestHold } from '../test/support/hold-harness.ts';
import { mochaGlobalTeardown } from '../test/support/global-fixtures.ts';

const MiB = 1024 * 1024;

export interface DriverMemoryResult {
  uploads: number;
  blobBytes: number;
  partSize: number;
  memoryBudget: number;
  wallSeconds: number;
  throughputMiBps: number;
  baselineRssMiB: number;
  peakRssMiB: number;
  peakBudgetUsedMiB: number;
}

export async function runDriverMemory(options: { quick: boolean }): Promise<DriverMemoryResult> {
  const uploads = options.quick ? 4 : 16;
  const blobBytes = (options.quick ? 32 : 128) * MiB;
  const partSize = (options.quick ? 16 : 64) * MiB;
  const memoryBudget = 512 * MiB;
  const hold = await startTestHold('s3');
  const driver = createHoldDriver({
    hold: { url: hold.url, audience: AUDIENCE },
    issuer: ISSUER,
    privateKey: hold.keys.privateKey,
    provider: 'minio',
    partSize,
    memoryBudget,
  });
  const store = driver.blobStore(DIDS.owner);
  // One random block, written repeatedly: the source costs no memory per upload.
  const block = randomBytes(MiB);
  global.gc?.();
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const started = process.hrtime.bigint();
  try {
    await Promise.all(
      Array.from({ length: uploads }, async () => {
        const writer = await store.create();
        const hash = createHash('sha256');
        for (let written = 0; written < blobBytes; written += block.length) {
          hash.update(block);
          await writer.write(block);
        }
        await writer.commit({ digest: `sha256:${hash.digest('hex')}`, size: blobBytes });
      }),
    );
  } finally {
    clearInterval(sampler);
  }
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: DriverMemoryResult = {
    uploads,
    blobBytes,
    partSize,
    memoryBudget,
    wallSeconds: round(wallSeconds),
    throughputMiBps: round((uploads * blobBytes) / MiB / wallSeconds),
    baselineRssMiB: round(baselineRss / MiB),
    peakRssMiB: round(peakRss / MiB),
    peakBudgetUsedMiB: round(driver.budget.peak / MiB),
  };
  await driver.close();
  await hold.close();
  return result;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  runDriverMemory({ quick })
    .then(async (result) => {
      console.log(JSON.stringify({ machine: { cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) }, ...result }, null, 2));
      await mochaGlobalTeardown();
    })
    .catch(async (err: unknown) => {
      console.error(err);
      await mochaGlobalTeardown();
      process.exit(1);
    });
}
