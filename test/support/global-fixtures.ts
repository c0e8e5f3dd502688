import { findPostgresBin, startPostgres, type RunningPostgres } from './postgres.ts';

// Every hold answer in the tests, in this process and the servers it starts, is checked against the contract.
process.env.HOLDFAST_VALIDATE_HOLD_RESPONSES ??= '1';
import { prepareS3Server, startS3Server, type RunningS3 } from './s3-servers.ts';

/**
 * One S3 server (MinIO unless HOLDFAST_S3_SERVER says otherwise) and one
 * PostgreSQL for the whole mocha run, each started lazily by the first suite
 * that asks for it and stopped when mocha finishes.
 */
let minio: Promise<RunningS3> | undefined;

/** The run's S3 server; named for MinIO, the default. */
export function sharedMinio(): Promise<RunningS3> {
  minio ??= startS3Server();
  return minio;
}

let postgres: Promise<RunningPostgres> | undefined;

export function sharedPostgres(): Promise<RunningPostgres> {
  postgres ??= startPostgres();
  return postgres;
}

/**
 * Before the first test, with no timeout: builds or installs the S3 server
 * and PostgreSQL the suites start, which takes minutes on a fresh machine
 * (a MinIO build alone outlasts a test's 120 s) and nothing once cached
 * under ~/.cache/holdfast. Neither is started until a suite asks for it.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(0);
    await Promise.all([prepareS3Server(), findPostgresBin()]);
  },
};

export async function mochaGlobalTeardown(): Promise<void> {
  const stops: Promise<void>[] = [];
  if (minio) stops.push(minio.then((server) => server.stop()));
  if (postgres) stops.push(postgres.then((server) => server.stop()));
  await Promise.allSettled(stops);
}
