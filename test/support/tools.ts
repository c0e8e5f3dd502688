import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HealthAnswer } from '../../src/core/instance.ts';

/** Where built tools (MinIO, the conformance binary) are cached between runs. */
export function cacheDir(): string {
  return process.env.HOLDFAST_CACHE ?? path.join(os.homedir(), '.cache', 'holdfast');
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && (await isExecutable(path.join(dir, name)))) return path.join(dir, name);
  }
  return undefined;
}

/**
 * Finds a Go-built tool: `$envVar`, then PATH (unless told not to), then the cache; builds it
 * with `go install module@version` into the cache when none is found.
 */
export async function findOrBuildGoTool(options: {
  name: string;
  envVar: string;
  module: string;
  version: string;
  /** False for generic binary names ("registry") that PATH may hold for something else. */
  searchPath?: boolean;
}): Promise<string> {
  const fromEnv = process.env[options.envVar];
  if (fromEnv) {
    if (await isExecutable(fromEnv)) return fromEnv;
    throw new Error(`${options.envVar}=${fromEnv} is not an executable file`);
  }
  const onPath = options.searchPath === false ? undefined : await findOnPath(options.name);
  if (onPath) return onPath;
  const bin = path.join(cacheDir(), 'bin');
  const cached = path.join(bin, options.name);
  if (await isExecutable(cached)) return cached;
  await mkdir(bin, { recursive: true });
  const goPath = path.join(cacheDir(), 'gopath');
  console.error(`[harness] building ${options.module}@${options.version} into ${bin} (first run only)`);
  await run('go', ['install', `${options.module}@${options.version}`], {
    ...process.env,
    GOBIN: bin,
    GOPATH: goPath,
    GOFLAGS: '-modcacherw',
    CGO_ENABLED: '0',
  });
  if (!(await isExecutable(cached))) throw new Error(`go install did not produce ${cached}`);
  return cached;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-8000);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr}`))));
  });
}

/** A health check reached another server than the one started (a port handed out twice). */
export class WrongServerError extends Error {}

/**
 * Polls `url` until a server started as `child` answers: with a 2xx, or with
 * anything at all when `anyStatus`. With `identity`, the answer must be that
 * service and instance's health check, and any other server's fails at once.
 * Fails early if the process exits, and after `timeoutMs`; `stderr` (its
 * recent output) goes into the error.
 */

export async function waitForHttp(
  url: string,
  child: ChildProcess,
  options: { timeoutMs: number; intervalMs?: number; anyStatus?: boolean; stderr?: () => string; identity?: Omit<HealthAnswer, 'status'> },
): Promise<void> {
  const output = () => (options.stderr ? `:\n${options.stderr()}` : '');
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}${output()}`);
    try {
      const response = await fetch(url);
      if (options.identity && response.ok) {
        const answer = (await response.json()) as Partial<HealthAnswer>;
        if (answer.service === options.identity.service && answer.instance === options.identity.instance) return;
        throw new WrongServerError(`${url} is answered by ${answer.service ?? 'a server'} ${answer.instance ?? ''}, not by ${options.identity.service} ${options.identity.instance}: another server has this port${output()}`);
      }
      await response.body?.cancel();
      if (options.anyStatus || response.ok) return;
    } catch (err) {
      if (err instanceof WrongServerError) throw err;
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
  throw new Error(`${url} did not answer within ${options.timeoutMs / 1000} s${output()}`);
}

export { freePort } from '../../src/core/net.ts';
