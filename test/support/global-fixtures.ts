import { startMinio, type RunningMinio } from './minio.ts';
import { startPostgres, type RunningPostgres } from './postgres.ts';

/**
 * One MinIO and one PostgreSQL for the whole mocha run, each started lazily by
 * the first suite that asks for it and stopped when mocha finishes.
 */
let minio: Promise<RunningMinio> | undefined;

export function sharedMinio(): Promise<RunningMinio> {
  minio ??= startMinio();
  return minio;
}

let postgres: Promise<RunningPostgres> | undefined;

export function sharedPostgres(): Promise<RunningPostgres> {
  postgres ??= startPostgres();
  return postgres;
}

export async function mochaGlobalTeardown(): Promise<void> {
  const stops: Promise<void>[] = [];
  if (minio) stops.push(minio.then((server) => server.stop()));
  if (postgres) stops.push(postgres.then((server) => server.stop()));
  await Promise.allSettled(stops);
}
