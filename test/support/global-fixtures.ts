import { findPostgresBin, startPostgres, type RunningPostgres } from './postgres.ts';

// Every hold answer in the tests, in this process and the servers it starts, is checked against the contract.
process.env.HOLDFAST_VALIDATE_HOLD_RESPONSES ??= '1';
import { prepareS3Server, selectedS3Server, startS3Server, type RunningS3 } from './s3-servers.ts';
import { chromiumBinary, craneBinary, orasBinary, skopeoBinary } from './clients.ts';
import { dockerBinaries } from './docker.ts';

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
 * Before the first test, with no timeout: finds, builds or installs every
 * tool the suites run, which takes many minutes on a fresh machine (a MinIO
 * build alone outlasts a test's 120 s) and a moment once cached under
 * ~/.cache/holdfast or installed. Nothing is started until a suite asks for
 * it. Debian packages install one at a time (apt takes a lock), Go tools
 * build one at a time beside them.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(0);
    const started = performance.now();
    await Promise.all([
      prepareInOrder([
        ['PostgreSQL', findPostgresBin],
        ['skopeo', skopeoBinary],
        ['Docker Engine (docker.io)', dockerBinaries],
        ['Chromium', chromiumBinary],
      ]),
      prepareInOrder([
        [`S3 server (${selectedS3Server()})`, prepareS3Server],
        ['crane', craneBinary],
        ['oras', orasBinary],
      ]),
    ]);
    const seconds = (performance.now() - started) / 1000;
    if (seconds > 5) console.error(`[harness] tools ready in ${seconds.toFixed(0)} s`);
  },
};

async function prepareInOrder(tools: [string, () => Promise<unknown>][]): Promise<void> {
  for (const [name, prepare] of tools) {
    const started = performance.now();
    await prepare();
    const seconds = (performance.now() - started) / 1000;
    // Cached tools are found in milliseconds; say only what took time.
    if (seconds > 1) console.error(`[harness] ${name}: ready after ${seconds.toFixed(0)} s`);
  }
}

export async function mochaGlobalTeardown(): Promise<void> {
  const stops: Promise<void>[] = [];
  if (minio) stops.push(minio.then((server) => server.stop()));
  if (postgres) stops.push(postgres.then((server) => server.stop()));
  await Promise.allSettled(stops);
}
