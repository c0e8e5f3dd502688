import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { freePort } from '../../src/core/net.ts';
import { hashPassword } from '../../src/registry/auth/users.ts';
import { generateSigningKey } from './hold-harness.ts';
import { stopChild } from './minio.ts';
import { waitForHttp } from './tools.ts';
import { runTool } from './clients.ts';
import { TEST_METRICS_TOKEN } from './hold-metrics.ts';
import type { RunningMinio } from './minio.ts';

/** The TypeScript sources, run through tsx, so tests never run a stale dist/. */
const SOURCE_CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * Node arguments that run `cli`: a `.ts` entry through tsx, a built `.js` one
 * (dist/cli/main.js, bin/holdfast.js) as is; with the Node flags bin/holdfast.js
 * would start it with, so the process started is the one that serves.
 */
export function cliNodeArgs(cli: string): string[] {
  return cli.endsWith('.ts') ? [...NODE_FLAGS, '--import', TSX_LOADER, cli] : [...NODE_FLAGS, cli];
}

export const STACK_USER = Object.freeze({ username: 'alice', password: 'alice-conformance-password', did: 'did:plc:alice0000000000000000', handle: 'alice' });
export const ANONYMOUS_DID = 'did:web:anonymous.registry.test';
/** A second user, write crew at the hold in the quota tier `small` when a stack sets one. */
export const QUOTA_USER = Object.freeze({ username: 'dora', password: 'dora-quota-password', did: 'did:plc:dora00000000000000000000', handle: 'dora', tier: 'small' });

/** The policies the real-client tests meet: `v*` tags of alice/released are immutable, and QUOTA_USER may store 2 MB. */
export const CLIENT_POLICIES = Object.freeze({
  policies: { immutableTags: [{ repositories: 'alice/released', tags: ['v*'] }] },
  users: [QUOTA_USER],
  hold: { quotas: { tiers: { small: '2MB' } } },
});

export interface StackOptions {
  minio: RunningMinio;
  /** Key prefix in the bucket, so several stacks can share one MinIO. */
  prefix: string;
  metadata?: { kind: 'sqlite' } | { kind: 'postgres'; url: string };
  registryInstances?: number;
  logLevel?: string;
  /**
   * The CLI entry point: the TypeScript sources through tsx (default), or a
   * built one (`dist/cli/main.js`, `bin/holdfast.js`); `$HOLDFAST_STACK_CLI`
   * changes the default.
   */
  cli?: string;
  /** `token` (default) as in production; `none` acts as STACK_USER on loopback (benchmarks). */
  auth?: 'token' | 'none';
  /** Storage driver options over the defaults (e.g. `memoryPerDid`). */
  driver?: Record<string, unknown>;
  /** The registry config's `policies`. */
  policies?: Record<string, unknown>;
  /** The registry config's `limits` (e.g. `maxOpenUploadsPerDid` raised for a benchmark). */
  limits?: Record<string, unknown>;
  /** The registry config's `gc` (`did` STACK_USER.did lets `holdfast gc` delete at the hold). */
  gc?: Record<string, unknown>;
  /** Hold settings for fault tests: where clients reach S3, and a short upload TTL. */
  hold?: {
    publicEndpoint?: string;
    /** Where the hold itself reaches S3 (a rules proxy); defaults to the server. */
    endpoint?: string;
    provider?: 'aws' | 'minio' | 'storj' | 'upcloud' | 'r2' | 'b2';
    uploadTtlSeconds?: number;
    janitorIntervalSeconds?: number;
    presignTtlSeconds?: number;
    /** The hold's `quotas`, and a tier for each extra user (all write crew). */
    quotas?: { tiers: Record<string, number | string>; defaultTier?: string };
    /** Makes STACK_USER write crew in this tier, and someone else the hold's owner (who is never limited). */
    stackUserTier?: string;
  };
  /** Registry users beside STACK_USER, each write crew at the hold (with `tier` when quotas are on). */
  users?: { username: string; password: string; did: string; handle: string; tier?: string }[];
}

export interface RunningStack {
  /** Base URLs of the registry instances. */
  registries: string[];
  holdUrl: string;
  dir: string;
  processes: ChildProcess[];
  restartRegistry(index: number): Promise<void>;
  /** `holdfast <args> --config registry-0.yaml`, as an operator runs it beside the stack; resolves to its stdout. */
  holdfast(args: string[]): Promise<string>;
  /**
   * The same, with `--config` the registry's or the hold's, as a child
   * process to measure (its pid) while it runs; `done` resolves to its
   * stdout once it exits with 0.
   */
  spawnHoldfast(args: string[], config?: 'registry' | 'hold'): { pid: number; done: Promise<string> };
  killRegistry(index: number): Promise<void>;
  /** SIGKILLs the hold and starts it again on the same port. */
  restartHold(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * MinIO + a hold + registry instances as separate processes, configured the
 * way production runs them: S3 backend, token auth, presigned redirects.
 */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const cli = options.cli ?? process.env.HOLDFAST_STACK_CLI ?? SOURCE_CLI;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-stack-'));
  const keys = await generateSigningKey();
  const holdPort = await freePort();
  const holdUrl = `http://127.0.0.1:${holdPort}`;
  await writeFile(path.join(dir, 'registry-signing.key'), keys.privateKey, { mode: 0o600 });
  await writeFile(path.join(dir, 'registry-signing.pub'), keys.publicKey);
  await writeFile(
    path.join(dir, 'hold.yaml'),
    toYaml({
      listen: { host: '127.0.0.1', port: holdPort },
      identity: 'did:web:hold.test',
      owner: options.hold?.stackUserTier ? 'did:plc:holdowner000000000000000' : STACK_USER.did,
      crew: [
        { did: ANONYMOUS_DID, access: 'read' },
        ...(options.hold?.stackUserTier ? [{ did: STACK_USER.did, access: 'write', tier: options.hold.stackUserTier }] : []),
        ...(options.users ?? []).map((user) => ({ did: user.did, access: 'write', ...(user.tier ? { tier: user.tier } : {}) })),
      ],
      ...(options.hold?.quotas ? { quotas: options.hold.quotas } : {}),
      trustedIssuers: [{ issuer: 'did:web:registry.test', publicKeyFile: 'registry-signing.pub' }],
      metrics: { bearerToken: TEST_METRICS_TOKEN },
      ...(options.hold?.uploadTtlSeconds !== undefined ? { uploadTtlSeconds: options.hold.uploadTtlSeconds } : {}),
      ...(options.hold?.presignTtlSeconds !== undefined ? { presignTtlSeconds: options.hold.presignTtlSeconds } : {}),
      ...(options.hold?.janitorIntervalSeconds !== undefined ? { janitorIntervalSeconds: options.hold.janitorIntervalSeconds } : {}),
      storage: {
        backend: 's3',
        s3: {
          provider: options.hold?.provider ?? 'minio',
          forcePathStyle: true,
          endpoint: options.hold?.endpoint ?? options.minio.endpoint,
          // Clients see S3 under another host name than the registry, as in
          // production; on the same host:port-less name Go clients would
          // forward the registry's Authorization header to S3 on redirect.
          publicEndpoint: options.hold?.publicEndpoint ?? options.minio.endpoint.replace('127.0.0.1', 'localhost'),
          bucket: options.minio.bucket,
          region: options.minio.region,
          prefix: options.prefix,
        },
      },
    }),
  );
  await writeFile(
    path.join(dir, 'users.yaml'),
    toYaml({
      users: await Promise.all(
        [STACK_USER, ...(options.users ?? [])].map(async (user) => ({ username: user.username, passwordHash: await hashPassword(user.password, 4), did: user.did, handle: user.handle })),
      ),
    }),
  );
  const env = {
    ...process.env,
    LOG_LEVEL: options.logLevel ?? 'warn',
    HOLDFAST_S3_ACCESS_KEY_ID: options.minio.accessKeyId,
    HOLDFAST_S3_SECRET_ACCESS_KEY: options.minio.secretAccessKey,
  };
  const processes: ChildProcess[] = [];
  let hold: ChildProcess;
  const spawnHold = async () => {
    const identity = { service: 'hold', instance: `hold-${randomUUID()}` } as const;
    hold = spawn(process.execPath, [...cliNodeArgs(cli), 'hold', '--config', path.join(dir, 'hold.yaml')], { env: { ...env, HOLDFAST_INSTANCE: identity.instance }, stdio: ['ignore', 'inherit', 'inherit'] });
    processes.push(hold);
    await waitForHttp(`${holdUrl}/healthz`, hold, { timeoutMs: 30_000, identity });
  };
  await spawnHold();

  const instances = options.registryInstances ?? 1;
  const registries: string[] = [];
  const registryProcesses: ChildProcess[] = [];
  const metadata = options.metadata?.kind === 'postgres' ? { kind: 'postgres', url: options.metadata.url } : { kind: 'sqlite', path: 'registry.db' };
  for (let index = 0; index < instances; index++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await writeFile(
      path.join(dir, `registry-${index}.yaml`),
      toYaml({
        listen: { host: '127.0.0.1', port },
        publicUrl: url,
        storage: {
          module: 'hold',
          options: {
            hold: { url: holdUrl, audience: 'did:web:hold.test' },
            issuer: 'did:web:registry.test',
            privateKeyFile: 'registry-signing.key',
            provider: options.hold?.provider ?? 'minio',
            ...options.driver,
          },
        },
        blobs: { delivery: 'redirect' },
        metadata,
        ...(options.policies ? { policies: options.policies } : {}),
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.gc ? { gc: options.gc } : {}),
        auth:
          options.auth === 'none'
            ? { mode: 'none', did: STACK_USER.did }
            : {
                mode: 'token',
                service: 'holdfast-test',
                signingKeyFile: 'registry-signing.key',
                usersFile: 'users.yaml',
                anonymousDid: ANONYMOUS_DID,
              },
      }),
    );
    registries.push(url);
  }
  const spawnRegistry = async (index: number) => {
    const identity = { service: 'registry', instance: `registry-${index}-${randomUUID()}` } as const;
    const child = spawn(process.execPath, [...cliNodeArgs(cli), 'registry', '--config', path.join(dir, `registry-${index}.yaml`)], {
      env: { ...env, HOLDFAST_INSTANCE: identity.instance },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    registryProcesses[index] = child;
    processes.push(child);
    await waitForHttp(`${registries[index] as string}/healthz`, child, { timeoutMs: 30_000, identity });
  };
  for (let index = 0; index < instances; index++) await spawnRegistry(index);

  const killRegistry = async (index: number) => {
    const child = registryProcesses[index];
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    registries,
    holdUrl,
    dir,
    processes,
    killRegistry,
    holdfast: (args) => runTool(process.execPath, [...cliNodeArgs(cli), ...args, '--config', path.join(dir, 'registry-0.yaml')], env, dir),
    spawnHoldfast(args, config = 'registry') {
      const child = spawn(process.execPath, [...cliNodeArgs(cli), ...args, '--config', path.join(dir, config === 'hold' ? 'hold.yaml' : 'registry-0.yaml')], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
      const done = new Promise<string>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`holdfast ${args.join(' ')} exited with ${code}: ${stderr}`))));
      });
      return { pid: child.pid as number, done };
    },
    async restartHold() {
      const exited = new Promise((resolve) => hold.once('exit', resolve));
      hold.kill('SIGKILL');
      await exited;
      await spawnHold();
    },
    async restartRegistry(index) {
      await killRegistry(index);
      await spawnRegistry(index);
    },
    async stop() {
      await Promise.all(processes.map((child) => stopChild(child)));
    },
  };
}
