import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { TEST_S3_KEYS, minioBinary, runningS3, startMinio, type RunningMinio } from './minio.ts';
import { findOnPath, findOrBuildGoTool, freePort } from './tools.ts';

/**
 * The real S3 server the tests run against, chosen by `HOLDFAST_S3_SERVER`:
 * `minio` (default), `moto` (moto's server mode, from PyPI) or `versitygw`
 * (the Versity S3 gateway over a POSIX directory, built with `go install`).
 */
export type S3ServerKind = 'minio' | 'moto' | 'versitygw';
export type RunningS3 = RunningMinio & { kind: S3ServerKind };

export const VERSITYGW = { name: 'versitygw', envVar: 'VERSITYGW_BIN', module: 'github.com/versity/versitygw/cmd/versitygw', version: 'v1.8.0' };

export const MOTO_VERSION = '5.2.1';

/** moto's server from PyPI, installed when missing. */
async function installMoto(): Promise<string> {
  console.error(`[harness] installing moto[server]==${MOTO_VERSION} from PyPI (first run only)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('python3', ['-m', 'pip', 'install', '--quiet', `moto[server]==${MOTO_VERSION}`], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pip install moto exited ${code}`))));
  });
  const installed = await findOnPath('moto_server');
  if (!installed) throw new Error('moto installed but moto_server is not on PATH');
  return installed;
}

export function selectedS3Server(): S3ServerKind {
  const kind = process.env.HOLDFAST_S3_SERVER ?? 'minio';
  if (kind !== 'minio' && kind !== 'moto' && kind !== 'versitygw') throw new Error(`HOLDFAST_S3_SERVER must be minio, moto or versitygw, not ${kind}`);
  return kind;
}

/** Finds, builds or installs the S3 server's program without starting it. */
export async function prepareS3Server(kind = selectedS3Server()): Promise<void> {
  if (kind === 'minio') await minioBinary();
  else if (kind === 'versitygw') await findOrBuildGoTool(VERSITYGW);
  else if (!process.env.MOTO_SERVER_BIN && !(await findOnPath('moto_server'))) await installMoto();
}

export async function startS3Server(kind = selectedS3Server()): Promise<RunningS3> {
  if (kind === 'minio') return { ...(await startMinio()), kind };
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `holdfast-${kind}-`));
  const { accessKeyId, secretAccessKey } = TEST_S3_KEYS;
  let child: ChildProcess;
  if (kind === 'moto') {
    const moto = process.env.MOTO_SERVER_BIN ?? (await findOnPath('moto_server')) ?? (await installMoto());
    child = spawn(moto, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' } });
  } else {
    const binary = await findOrBuildGoTool(VERSITYGW);
    child = spawn(binary, ['--access', accessKeyId, '--secret', secretAccessKey, '--port', `127.0.0.1:${port}`, 'posix', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const server = runningS3(child, dataDir, `http://127.0.0.1:${port}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} exited with ${child.exitCode}: ${stderr}`);
    try {
      await server.client.send(new CreateBucketCommand({ Bucket: server.bucket }));
      break;
    } catch (err) {
      if ((err as { name?: string }).name === 'BucketAlreadyOwnedByYou') break;
      if (Date.now() > deadline) throw new Error(`${kind} did not come up: ${(err as Error).message} ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { ...server, kind };
}
