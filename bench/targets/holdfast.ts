/**
 * Holdfast as production runs it, minus auth: the built JavaScript
 * (`npm run build`, then `node dist/cli/main.js`), a hold on the S3 backend and
 * a registry with presigned redirects, as separate processes on the same MinIO.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { RunningMinio } from '../../test/support/minio.ts';
import { startStack, type RunningStack } from '../../test/support/stack.ts';
import type { OciTarget } from './target.ts';

export interface HoldfastTarget extends OciTarget {
  holdUrl: string;
  holdPid: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Builds dist/ once per benchmark process. */
let built: Promise<unknown> | undefined;

export async function startHoldfast(minio: RunningMinio, options: { prefix: string }): Promise<HoldfastTarget> {
  built ??= promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
  await built;
  const cli = `${ROOT}dist/cli/main.js`;
  // The driver's defaults: one user pushes everything here, and its uploads share a quarter of the 512 MiB memory budget
  // (`memoryPerDid`, 128 MiB: 8 parts of 16 MiB), as on any registry that does not raise it. Given the whole budget, 16
  // concurrent pushes filled it and the registry's peak RSS grew by the difference (about 650 against 270 MiB) for no
  // measurable gain in wall time: the pushes are bound by CPU and storage, not by buffers.
  // HOLDFAST_BENCH_QUOTA=1: that user is crew with a quota (1 TB) rather than the hold's owner, so every push pays the checks.
  const quota = process.env.HOLDFAST_BENCH_QUOTA === '1' ? { hold: { quotas: { tiers: { bench: '1TB' } }, stackUserTier: 'bench' } } : {};
  const stack: RunningStack = await startStack({ minio, prefix: options.prefix, auth: 'none', logLevel: 'error', cli, ...quota });
  const [hold, registry] = stack.processes;
  return {
    name: 'holdfast',
    baseUrl: stack.registries[0] as string,
    pid: registry?.pid as number,
    holdUrl: stack.holdUrl,
    holdPid: hold?.pid as number,
    stop: () => stack.stop(),
  };
}
