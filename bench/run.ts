/**
 * `npm run bench` runs every benchmark; `npm run bench -- --quick` runs small
 * sizes. Results go to bench/results/latest.json. Benchmarks report figures;
 * they never assert speed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mochaGlobalTeardown } from '../test/support/global-fixtures.ts';
import { runDriverMemory } from './driver-memory.ts';
import { runResumeRehash } from './resume-rehash.ts';
import { runLoad } from './load.ts';

const quick = process.argv.includes('--quick');
const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

try {
  const driverMemory = await runDriverMemory({ quick });
  const resumeRehash = await runResumeRehash({ quick });
  const load = await runLoad({ quick });
  const report = {
    generatedAt: new Date().toISOString(),
    quick,
    machine: { cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    driverMemory,
    resumeRehash,
    load,
  };
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
} finally {
  await mochaGlobalTeardown();
}
