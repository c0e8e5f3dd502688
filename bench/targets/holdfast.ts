/**
 * Holdfast as production runs it, minus auth: a hold on the S3 backend and a
 * registry with presigned redirects, as separate processes on the same MinIO.
 */
import type { RunningMinio } from '../../test/support/minio.ts';
import { startStack, type RunningStack } from '../../test/support/stack.ts';
import type { OciTarget } from './target.ts';

export interface HoldfastTarget extends OciTarget {
  holdUrl: string;
  holdPid: number;
}

export async function startHoldfast(minio: RunningMinio, options: { prefix: string }): Promise<HoldfastTarget> {
  const stack: RunningStack = await startStack({ minio, prefix: options.prefix, auth: 'none', logLevel: 'error' });
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
