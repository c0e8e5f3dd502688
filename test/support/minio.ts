import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { findOrBuildGoTool, freePort, waitForHttp } from './tools.ts';

/** Pinned MinIO; builds with Go 1.26. Documented in the README. */
export const MINIO_MODULE = 'github.com/minio/minio';
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

export interface RunningMinio {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A client with the test's own credentials, for assertions. */
  client: S3Client;
  /** The server's process, for benchmarks that count its CPU. */
  pid: number;
  stop(): Promise<void>;
}

/** Credentials every test S3 server is started with. */
export const TEST_S3_KEYS = Object.freeze({ accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret-key' });

/**
 * The handle for a started S3 server process: a client with the test's own
 * credentials, and a stop that ends the process and removes its data.
 */
export function runningS3(child: ChildProcess, dataDir: string, endpoint: string): RunningMinio {
  const region = 'us-east-1';
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { ...TEST_S3_KEYS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    endpoint,
    region,
    bucket: 'holdfast-test',
    ...TEST_S3_KEYS,
    client,
    pid: child.pid as number,
    async stop() {
      client.destroy();
      await stopChild(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The MinIO binary, built with `go install` when missing (several minutes on a fresh machine). */
export function minioBinary(): Promise<string> {
  return findOrBuildGoTool({ name: 'minio', envVar: 'MINIO_BIN', module: MINIO_MODULE, version: MINIO_VERSION });
}

export async function startMinio(): Promise<RunningMinio> {
  const binary = await minioBinary();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-minio-'));
  const port = await freePort();
  const consolePort = await freePort();
  const { accessKeyId, secretAccessKey } = TEST_S3_KEYS;
  const child = spawn(binary, ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'], {
    env: {
      ...process.env,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: 'off',
      MINIO_UPDATE: 'off',
      MINIO_CI_CD: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${endpoint}/minio/health/live`, child, { timeoutMs: 60_000, intervalMs: 200, stderr: () => stderr });
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const server = runningS3(child, dataDir, endpoint);
  await server.client.send(new CreateBucketCommand({ Bucket: server.bucket }));
  return server;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
