import { startMinio, type RunningMinio } from './minio.ts';

/**
 * One MinIO for the whole mocha run, started lazily by the first suite that
 * asks for it and stopped when mocha finishes.
 */
let minio: Promise<RunningMinio> | undefined;

export function sharedMinio(): Promise<RunningMinio> {
  minio ??= startMinio();
  return minio;
}

export async function mochaGlobalTeardown(): Promise<void> {
  if (minio) await (await minio).stop();
}
