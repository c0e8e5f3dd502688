/**
 * The CNCF distribution v3 registry with its s3-aws driver on the same MinIO:
 * what users would run instead. Built once with `go install` into the cache.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { findOrBuildGoTool, freePort, waitForHttp } from '../../test/support/tools.ts';
import { stopChild, type RunningMinio } from '../../test/support/minio.ts';
import type { OciTarget } from './target.ts';

export const DISTRIBUTION_MODULE = 'github.com/distribution/distribution/v3/cmd/registry';
export const DISTRIBUTION_VERSION = 'v3.1.2';
/** The s3-aws driver's default chunk size (2 × the 5 MiB S3 minimum). */
export const DISTRIBUTION_DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024;

export function findOrBuildDistribution(): Promise<string> {
  return findOrBuildGoTool({ name: 'registry', envVar: 'HOLDFAST_DISTRIBUTION_BIN', module: DISTRIBUTION_MODULE, version: DISTRIBUTION_VERSION, searchPath: false });
}

/**
 * Writes distribution's config.yml into `dir`: its s3-aws driver on the
 * MinIO under `/<prefix>`, redirects on, deletes enabled, the in-memory blob
 * descriptor cache of its example config, and `chunkSize` (its default unless
 * given). `garbage-collect` reads only `storage` from it.
 */
export async function writeDistributionConfig(
  minio: RunningMinio,
  options: { dir: string; prefix: string; chunkSize?: number | undefined; port?: number; debugPort?: number },
): Promise<string> {
  const configFile = path.join(options.dir, 'config.yml');
  const port = options.port ?? (await freePort());
  const debugPort = options.debugPort ?? (await freePort());
  await writeFile(
    configFile,
    toYaml({
      version: 0.1,
      log: { level: 'error', accesslog: { disabled: true } },
      storage: {
        s3: {
          accesskey: minio.accessKeyId,
          secretkey: minio.secretAccessKey,
          region: minio.region,
          regionendpoint: minio.endpoint,
          forcepathstyle: true,
          bucket: minio.bucket,
          secure: false,
          v4auth: true,
          rootdirectory: `/${options.prefix}`,
          ...(options.chunkSize ? { chunksize: options.chunkSize } : {}),
        },
        redirect: { disable: false },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex'), debug: { addr: `127.0.0.1:${debugPort}` } },
    }),
    { mode: 0o600 },
  );
  return configFile;
}

/**
 * `registry garbage-collect [--dry-run] --quiet <config>`: distribution's
 * offline GC, which must run while no `serve` writes under that prefix.
 * Without `--delete-untagged` (`-m`). Resolves once it exits with 0.
 */
export async function spawnDistributionGc(configFile: string, options: { dryRun: boolean }): Promise<{ pid: number; done: Promise<void> }> {
  const binary = await findOrBuildDistribution();
  const child = spawn(binary, ['garbage-collect', ...(options.dryRun ? ['--dry-run'] : []), '--quiet', configFile], {
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`registry garbage-collect exited with ${code}: ${stderr}`))));
  });
  return { pid: child.pid as number, done };
}

/**
 * Starts distribution with redirects on (pulls get a presigned S3 URL, as
 * holdfast's do), deletes enabled, the in-memory blob descriptor cache of its
 * example config, and `chunkSize` (its default unless given).
 */
export async function startDistribution(minio: RunningMinio, options: { name: string; prefix: string; chunkSize?: number }): Promise<OciTarget> {
  const binary = await findOrBuildDistribution();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-distribution-'));
  const port = await freePort();
  const debugPort = await freePort();
  const configFile = await writeDistributionConfig(minio, { dir, prefix: options.prefix, chunkSize: options.chunkSize, port, debugPort });
  const child: ChildProcess = spawn(binary, ['serve', configFile], {
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${baseUrl}/v2/`, child, { timeoutMs: 30_000, anyStatus: true, stderr: () => stderr });
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    name: options.name,
    baseUrl,
    pid: child.pid as number,
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
