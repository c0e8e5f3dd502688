import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { debianTool } from './clients.ts';
import { tarHeader } from './oci-layout.ts';
import { findOnPath, isExecutable } from './tools.ts';

/**
 * Docker Engine from Debian's `docker.io` package (20.10.24), installed with
 * apt when `dockerd` is missing, run as a private daemon: its own socket, data
 * root, exec root, pid file and (empty) daemon.json under a temp dir, the vfs
 * storage driver, no bridge and no iptables rules, so it never meets a system
 * daemon or the host's network. The CLI gets its own DOCKER_CONFIG too.
 */
export interface DockerEngine {
  /** `docker version` of the daemon. */
  serverVersion: string;
  clientVersion: string;
  /** Runs the docker CLI against this daemon; rejects with its stderr on failure. */
  docker(args: string[], options?: { input?: string }): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function dockerBinaries(): Promise<{ dockerd: string; docker: string }> {
  const dockerd = await debianTool({ name: 'dockerd', pkg: 'docker.io', envVar: 'DOCKERD_BIN' });
  // The CLI of the same package (/usr/bin/docker beside /usr/sbin/dockerd), not
  // another one that PATH may list first.
  const candidates = [process.env.DOCKER_BIN, path.join(path.dirname(dockerd), 'docker'), path.join(path.dirname(dockerd), '..', 'bin', 'docker')];
  for (const candidate of candidates) if (candidate && (await isExecutable(candidate))) return { dockerd, docker: path.resolve(candidate) };
  const onPath = await findOnPath('docker');
  if (!onPath) throw new Error(`found ${dockerd} but no docker CLI`);
  return { dockerd, docker: onPath };
}

export async function startDockerEngine(): Promise<DockerEngine> {
  const { dockerd, docker } = await dockerBinaries();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-docker-'));
  const socket = path.join(dir, 'docker.sock');
  await writeFile(path.join(dir, 'daemon.json'), '{}');
  await mkdir(path.join(dir, 'config'));
  const namespace = `holdfast-test-${process.pid}`;
  const daemon: ChildProcess = spawn(
    dockerd,
    [
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'docker.pid'),
      '--config-file', path.join(dir, 'daemon.json'),
      '--containerd-namespace', namespace,
      '--containerd-plugins-namespace', `${namespace}-plugins`,
      '--host', `unix://${socket}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-16_000);
  });
  const exited = once(daemon, 'exit');
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: path.join(dir, 'config') };
  const run = (args: string[], options: { input?: string } = {}) => runCli(docker, args, env, options.input);

  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (daemon.exitCode !== null) {
      await stop();
      throw new Error(`dockerd exited with ${daemon.exitCode}:\n${log}`);
    }
    try {
      const { stdout } = await run(['version', '--format', '{{.Server.Version}} {{.Client.Version}}']);
      const [serverVersion = '', clientVersion = ''] = stdout.trim().split(' ');
      return { serverVersion, clientVersion, docker: run, stop };
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`dockerd did not answer within 60 s: ${(err as Error).message}\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function runCli(binary: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(input ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(Object.assign(new Error(`docker ${args.join(' ')} exited ${code}: ${stderr.trim()}`), { stdout, stderr }));
    });
  });
}

export interface DockerLayer {
  /** Bytes of the one file inside the layer. */
  payload: number;
  /** The layer tar: its size, and its sha256 (the diff_id). */
  size: number;
  diffId: string;
  /** Path of the tar inside the archive. */
  entry: string;
}

export interface DockerImage {
  reference: string;
  layers: DockerLayer[];
  /** sha256 of the config JSON: the image id Docker reports. */
  id: string;
}

/**
 * Writes a `docker save`-format archive (`manifest.json`, the config JSONs,
 * each layer a real tar with one file of random bytes) that `docker load`
 * accepts. `images` name their layers by index into `payloads`, so images can
 * share layers.
 */
export async function writeDockerArchive(file: string, payloads: number[], images: { reference: string; layers: number[] }[]): Promise<DockerImage[]> {
  const root = `${file}.d`;
  await mkdir(root, { recursive: true });
  const layers: DockerLayer[] = [];
  for (const [index, payload] of payloads.entries()) {
    const entry = `layer-${index}/layer.tar`;
    await mkdir(path.join(root, `layer-${index}`));
    const { size, digest } = await writeTarOfRandomFile(path.join(root, entry), `file-${index}.bin`, payload);
    layers.push({ payload, size, diffId: digest, entry });
  }
  const built: DockerImage[] = [];
  const manifest = [];
  for (const [index, image] of images.entries()) {
    const own = image.layers.map((layer) => layers[layer] as DockerLayer);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        created: '2026-01-01T00:00:00Z',
        rootfs: { type: 'layers', diff_ids: own.map((layer) => layer.diffId) },
        history: own.map((layer) => ({ created: '2026-01-01T00:00:00Z', created_by: `holdfast test layer of ${layer.payload} bytes` })),
      }),
    );
    const configName = `config-${index}.json`;
    await writeFile(path.join(root, configName), config);
    manifest.push({ Config: configName, RepoTags: [image.reference], Layers: own.map((layer) => layer.entry) });
    built.push({ reference: image.reference, layers: own, id: `sha256:${createHash('sha256').update(config).digest('hex')}` });
  }
  await writeFile(path.join(root, 'manifest.json'), JSON.stringify(manifest));
  await runCli('tar', ['-cf', file, '-C', root, '.'], process.env);
  await rm(root, { recursive: true, force: true });
  return built;
}

/** A one-file ustar archive streamed to disk: header, the random data padded to 512, two zero blocks. */
async function writeTarOfRandomFile(file: string, name: string, size: number): Promise<{ size: number; digest: string }> {
  const header = tarHeader(name, size, new Date(Date.UTC(2026, 0, 1)));
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let total = 0;
  const write = async (bytes: Buffer) => {
    hash.update(bytes);
    total += bytes.length;
    if (!out.write(bytes)) await once(out, 'drain');
  };
  await write(header);
  for (let left = size; left > 0; left -= 8 * 1024 * 1024) await write(randomBytes(Math.min(left, 8 * 1024 * 1024)));
  await write(Buffer.alloc((512 - (size % 512)) % 512));
  await write(Buffer.alloc(1024));
  out.end();
  await once(out, 'finish');
  return { size: total, digest: `sha256:${hash.digest('hex')}` };
}
