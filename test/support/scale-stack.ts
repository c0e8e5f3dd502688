import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { hashPassword } from '../../src/registry/auth/users.ts';
import { generateSigningKey } from './hold-harness.ts';
import { stopChild, type RunningMinio } from './minio.ts';
import { startRoundRobinProxy, type RoundRobinProxy } from './round-robin-proxy.ts';
import { startS3Gate, type S3Gate } from './s3-gate.ts';
import { ANONYMOUS_DID, STACK_USER, cliNodeArgs } from './stack.ts';
import { freePort, waitForHttp } from './tools.ts';

const SOURCE_CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
export const SCALE_ISSUER = 'did:web:registry.test';
export const SCALE_HOLD_IDENTITY = 'did:web:hold.test';

/**
 * The scale-out topology of docs/ARCHITECTURE.md ("Running several
 * instances"), every part a real process on loopback:
 *
 * ```
 * clients ─> registry proxy (round robin) ─> registry 0, registry 1 ── one Postgres
 *                                                 │ driver
 *                                                 ▼
 *            hold proxy (round robin) ─> hold 0, hold 1 ── S3 gate 0, 1 ─> one MinIO bucket, one prefix
 * ```
 *
 * The two registries share the Postgres database, the token signing key and
 * the service-token key; the two holds share the bucket and prefix and trust
 * the same issuer. Clients talk only to the registry proxy, registries only
 * to the hold proxy; presigned URLs go straight to MinIO. Each hold reaches
 * MinIO through its own `S3Gate`, so a test can freeze one hold in the middle
 * of an operation before it kills it.
 */
export interface ScaleStackOptions {
  minio: RunningMinio;
  postgresUrl: string;
  prefix: string;
  gc: { graceSeconds: number; intervalSeconds: number; deletingTimeoutSeconds?: number };
  hold: { uploadTtlSeconds: number; janitorIntervalSeconds: number; deletionLeaseSeconds: number };
  /** Extra storage-driver options for both registries (e.g. `maxCachedUrls`). */
  driver?: Record<string, unknown>;
  logLevel?: string;
}

export type Tier = 'registry' | 'hold';

export interface Restart {
  tier: Tier;
  index: number;
  killedAt: number;
  /** When the new process answered its health check. */
  healthyAt: number;
}

export interface ScaleStack {
  /** Where clients connect: the registry proxy. */
  url: string;
  registryProxy: RoundRobinProxy;
  holdProxy: RoundRobinProxy;
  /** One per hold, in hold order. */
  gates: S3Gate[];
  dir: string;
  /** SIGKILLs the instance and starts it again on the same port. */
  restart(tier: Tier, index: number): Promise<Restart>;
  /** One garbage-collection pass now, as `holdfast gc` with registry `index`'s config; resolves to its report. */
  runGc(index: number): Promise<{ deletedBlobs: number; deletedManifests: number }>;
  /** The last lines the instance wrote, for failure messages. */
  logTail(tier: Tier, index: number): string;
  stop(): Promise<void>;
}

interface Instance {
  tier: Tier;
  index: number;
  port: number;
  config: string;
  child?: ChildProcess;
  log: WriteStream;
  tail: string;
}

export async function startScaleStack(options: ScaleStackOptions): Promise<ScaleStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-scale-'));
  const keys = await generateSigningKey();
  await writeFile(path.join(dir, 'registry-signing.key'), keys.privateKey, { mode: 0o600 });
  await writeFile(path.join(dir, 'registry-signing.pub'), keys.publicKey);
  await writeFile(
    path.join(dir, 'users.yaml'),
    toYaml({ users: [{ username: STACK_USER.username, passwordHash: await hashPassword(STACK_USER.password, 4), did: STACK_USER.did, handle: STACK_USER.handle }] }),
  );

  const holdPorts = [await freePort(), await freePort()];
  const registryPorts = [await freePort(), await freePort()];
  const holdProxy = await startRoundRobinProxy(holdPorts.map((port) => `http://127.0.0.1:${port}`));
  const registryProxy = await startRoundRobinProxy(registryPorts.map((port) => `http://127.0.0.1:${port}`));
  const gates = [await startS3Gate(options.minio.endpoint), await startS3Gate(options.minio.endpoint)];

  const instances: Instance[] = [];
  const open = (tier: Tier, index: number, port: number, config: string): Instance => {
    const instance: Instance = { tier, index, port, config, log: createWriteStream(path.join(dir, `${tier}-${index}.log`)), tail: '' };
    instances.push(instance);
    return instance;
  };
  for (const [index, port] of holdPorts.entries()) {
    const config = path.join(dir, `hold-${index}.yaml`);
    await writeFile(
      config,
      toYaml({
        listen: { host: '127.0.0.1', port },
        identity: SCALE_HOLD_IDENTITY,
        owner: STACK_USER.did,
        crew: [{ did: ANONYMOUS_DID, access: 'read' }],
        trustedIssuers: [{ issuer: SCALE_ISSUER, publicKeyFile: 'registry-signing.pub' }],
        uploadTtlSeconds: options.hold.uploadTtlSeconds,
        janitorIntervalSeconds: options.hold.janitorIntervalSeconds,
        deletionLeaseSeconds: options.hold.deletionLeaseSeconds,
        storage: {
          backend: 's3',
          s3: {
            provider: 'minio',
            forcePathStyle: true,
            endpoint: (gates[index] as S3Gate).url,
            publicEndpoint: options.minio.endpoint.replace('127.0.0.1', 'localhost'),
            bucket: options.minio.bucket,
            region: options.minio.region,
            prefix: options.prefix,
          },
        },
      }),
    );
    open('hold', index, port, config);
  }
  for (const [index, port] of registryPorts.entries()) {
    const config = path.join(dir, `registry-${index}.yaml`);
    await writeFile(
      config,
      toYaml({
        listen: { host: '127.0.0.1', port },
        publicUrl: registryProxy.url,
        storage: {
          module: 'hold',
          options: {
            hold: { url: holdProxy.url, audience: SCALE_HOLD_IDENTITY },
            issuer: SCALE_ISSUER,
            privateKeyFile: 'registry-signing.key',
            provider: 'minio',
            ...options.driver,
          },
        },
        blobs: { delivery: 'redirect' },
        metadata: { kind: 'postgres', url: options.postgresUrl },
        gc: { did: STACK_USER.did, ...options.gc },
        auth: { mode: 'token', service: 'holdfast-test', signingKeyFile: 'registry-signing.key', usersFile: 'users.yaml', anonymousDid: ANONYMOUS_DID },
        // One test account runs every push, with abandoned sessions from the kills on top.
        limits: { maxOpenUploadsPerDid: 10_000 },
      }),
    );
    open('registry', index, port, config);
  }

  const env = {
    ...process.env,
    LOG_LEVEL: options.logLevel ?? 'warn',
    HOLDFAST_S3_ACCESS_KEY_ID: options.minio.accessKeyId,
    HOLDFAST_S3_SECRET_ACCESS_KEY: options.minio.secretAccessKey,
  };
  const find = (tier: Tier, index: number): Instance => {
    const instance = instances.find((candidate) => candidate.tier === tier && candidate.index === index);
    if (!instance) throw new TypeError(`no ${tier} ${index}`);
    return instance;
  };
  const spawnInstance = async (instance: Instance) => {
    const identity = { service: instance.tier, instance: `${instance.tier}-${instance.index}-${randomUUID()}` } as const;
    const child = spawn(process.execPath, [...cliNodeArgs(SOURCE_CLI), instance.tier, '--config', instance.config], {
      cwd: dir,
      env: { ...env, HOLDFAST_INSTANCE: identity.instance },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const record = (chunk: Buffer) => {
      instance.log.write(chunk);
      // JSON log lines only: the AWS SDK's Node version warning is not news.
      const lines = chunk.toString().split('\n').filter((line) => line.startsWith('{'));
      if (lines.length > 0) instance.tail = (instance.tail + lines.join('\n') + '\n').slice(-4000);
    };
    child.stdout?.on('data', record);
    child.stderr?.on('data', record);
    instance.child = child;
    await waitForHttp(`http://127.0.0.1:${instance.port}/healthz`, child, { timeoutMs: 30_000, intervalMs: 50, stderr: () => instance.tail, identity });
  };
  const kill = async (instance: Instance) => {
    const child = instance.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  const stop = async () => {
    await Promise.all(instances.map((instance) => (instance.child ? stopChild(instance.child) : undefined)));
    for (const instance of instances) instance.log.end();
    await Promise.all([registryProxy.close(), holdProxy.close(), ...gates.map((gate) => gate.close())]);
  };
  try {
    await Promise.all(instances.filter((instance) => instance.tier === 'hold').map(spawnInstance));
    // One at a time: both run the database migrations at startup.
    for (const instance of instances.filter((candidate) => candidate.tier === 'registry')) await spawnInstance(instance);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: registryProxy.url,
    registryProxy,
    holdProxy,
    gates,
    dir,
    async restart(tier, index) {
      const instance = find(tier, index);
      const killedAt = Date.now();
      await kill(instance);
      await spawnInstance(instance);
      return { tier, index, killedAt, healthyAt: Date.now() };
    },
    async runGc(index) {
      const child = spawn(process.execPath, [...cliNodeArgs(SOURCE_CLI), 'gc', '--config', find('registry', index).config], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      if (code !== 0) throw new Error(`holdfast gc exited ${code}: ${stderr}`);
      // Its logs go to stderr: stdout is the report alone.
      return JSON.parse(stdout) as { deletedBlobs: number; deletedManifests: number };
    },
    logTail(tier, index) {
      return find(tier, index).tail;
    },
    stop,
  };
}
