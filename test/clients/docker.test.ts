import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { sharedMinio } from '../support/global-fixtures.ts';
import { startDockerEngine, writeDockerArchive, type DockerEngine, type DockerImage } from '../support/docker.ts';
import { stopChild } from '../support/minio.ts';
import { CLIENT_POLICIES, cliNodeArgs, QUOTA_USER, STACK_USER, startStack, type RunningStack } from '../support/stack.ts';
import { freePort, waitForHttp } from '../support/tools.ts';

const MiB = 1024 * 1024;

interface PushedManifest {
  config: { digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number }[];
}

/**
 * The real Docker Engine (Debian's docker.io, a private dockerd) against the
 * production-shaped stack: a hold on MinIO, token auth, blob GETs redirected
 * to S3. Docker 20.10 pushes each layer as one streamed PATCH with no length,
 * then a PUT, and follows the registry's 307 to S3 on pull.
 */
describe('Docker Engine against registry + hold + MinIO', function () {
  this.timeout(900_000);
  let stack: RunningStack;
  let engine: DockerEngine;
  let work: string;
  let host: string;
  let v1: DockerImage;
  let v2: DockerImage;
  const prefix = `docker-${process.pid}`;

  before(async function () {
    const minio = await sharedMinio();
    stack = await startStack({ minio, prefix, ...CLIENT_POLICIES });
    host = new URL(stack.registries[0] as string).host;
    engine = await startDockerEngine();
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-docker-images-'));
    // Layers of 1 MiB, 200 MiB and 10 bytes; v2 reuses the first and the last and adds one.
    [v1, v2] = (await writeDockerArchive(path.join(work, 'images.tar'), [MiB, 200 * MiB, 10, 64 * 1024], [
      { reference: `${host}/alice/app:v1`, layers: [0, 1, 2] },
      { reference: `${host}/alice/app:v2`, layers: [0, 2, 3] },
    ])) as [DockerImage, DockerImage];
    await engine.docker(['load', '--input', path.join(work, 'images.tar')]);
  });

  after(async function () {
    await engine?.stop();
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The manifest as the registry serves it (Basic credentials work on every request). */
  async function pushedManifest(tag: string): Promise<PushedManifest> {
    const response = await fetch(`${stack.registries[0]}/v2/alice/app/manifests/${tag}`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${STACK_USER.username}:${STACK_USER.password}`).toString('base64')}`,
        accept: 'application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    expect(response.status, await response.clone().text()).to.equal(200);
    return (await response.json()) as PushedManifest;
  }

  it('docker login takes the stack user and refuses a wrong password', async function () {
    const refused = await engine.docker(['login', '--username', STACK_USER.username, '--password-stdin', host], { input: 'not-the-password\n' }).catch((err: { stderr?: string }) => err);
    expect((refused as { stderr?: string }).stderr).to.match(/unauthorized|401/i);
    const { stdout } = await engine.docker(['login', '--username', STACK_USER.username, '--password-stdin', host], { input: `${STACK_USER.password}\n` });
    expect(stdout).to.match(/Login Succeeded/);
  });

  it('pushes an image with 1 MiB, 200 MiB and 10-byte layers, then a second tag reusing two of them', async function () {
    const started = Date.now();
    const first = await engine.docker(['push', v1.reference]);
    expect(first.stdout).to.match(/v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    const second = await engine.docker(['push', v2.reference]);
    expect(second.stdout).to.match(/v2: digest: sha256:[0-9a-f]{64} size: \d+/);
    expect(second.stdout.match(/Layer already exists/g), second.stdout).to.have.length(2);
    const pushMs = Date.now() - started;

    const [m1, m2] = [await pushedManifest('v1'), await pushedManifest('v2')];
    expect(m1.config.digest).to.equal(v1.id);
    expect(m2.config.digest).to.equal(v2.id);
    // Docker gzips each layer on push; the first two layers of v2's manifest are v1's first and last.
    expect(m1.layers.map((layer) => layer.mediaType)).to.deep.equal(Array(3).fill('application/vnd.docker.image.rootfs.diff.tar.gzip'));
    expect([m2.layers[0]?.digest, m2.layers[1]?.digest]).to.deep.equal([m1.layers[0]?.digest, m1.layers[2]?.digest]);

    // Every blob is in the bucket under the stack's prefix, each once.
    const minio = await sharedMinio();
    const listed = await minio.client.send(new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/docker/registry/v2/blobs/` }));
    const keys = (listed.Contents ?? []).map((item) => item.Key as string);
    const blobs = new Set([m1.config.digest, m2.config.digest, ...m1.layers.map((layer) => layer.digest), ...m2.layers.map((layer) => layer.digest)]);
    for (const digest of blobs) expect(keys.filter((key) => key.includes(`/${digest.slice('sha256:'.length)}/`)), digest).to.have.length(1);
    console.log(
      `      docker ${engine.clientVersion} → daemon ${engine.serverVersion}: pushed v1 layers of ${m1.layers.map((layer) => layer.size).join(', ')} bytes (gzip of tars of ` +
        `${v1.layers.map((layer) => layer.size).join(', ')}), and v2, in ${pushMs} ms`,
    );
  });

  it('docker push cannot move an immutable tag, and pushing the same image to it again succeeds', async function () {
    const released = `${host}/alice/released:v1`;
    await engine.docker(['tag', v1.reference, released]);
    await engine.docker(['push', released]);
    await engine.docker(['tag', v2.reference, released]);
    const failure = (await engine.docker(['push', released]).catch((err: unknown) => err)) as { stderr?: string };
    expect(failure).to.be.instanceOf(Error);
    expect(failure.stderr).to.contain('denied: tag v1 in alice/released is immutable and points at');
    await engine.docker(['tag', v1.reference, released]);
    expect((await engine.docker(['push', released])).stdout).to.match(/v1: digest: sha256:[0-9a-f]{64}/);
    await engine.docker(['rmi', released]);
    console.log(`      ${failure.stderr?.trim()}`);
  });

  it('after docker rmi, pulls both tags back with the same image ids and byte-exact diff_ids', async function () {
    await engine.docker(['rmi', v1.reference, v2.reference]);
    const { stdout: left } = await engine.docker(['images', '--quiet']);
    expect(left.trim(), 'no image left after rmi').to.equal('');
    const started = Date.now();
    for (const image of [v1, v2]) {
      await engine.docker(['pull', image.reference]);
      const { stdout } = await engine.docker(['image', 'inspect', '--format', '{{.Id}} {{json .RootFS.Layers}}', image.reference]);
      const [id, layers] = [stdout.slice(0, stdout.indexOf(' ')), JSON.parse(stdout.slice(stdout.indexOf(' ') + 1)) as string[]];
      expect(id).to.equal(image.id);
      expect(layers).to.deep.equal(image.layers.map((layer) => layer.diffId));
    }
    console.log(`      pulled v1 and v2 in ${Date.now() - started} ms`);
  });

  it("a pull of a tag that does not exist gives Docker's usual message", async function () {
    const failure = (await engine.docker(['pull', `${host}/alice/app:missing`]).catch((err: unknown) => err)) as { stderr?: string };
    expect(failure).to.be.instanceOf(Error);
    expect(failure.stderr).to.contain(`manifest for ${host}/alice/app:missing not found: manifest unknown`);
    console.log(`      ${failure.stderr?.trim()}`);
  });

  it('pushes to and pulls from `holdfast start` (the quick start: no login, plain HTTP on 127.0.0.1)', async function () {
    const port = await freePort();
    const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(process.execPath, [...cliNodeArgs(cli), 'start', '--data', path.join(work, 'start-data'), '--port', String(port)], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`, child, { timeoutMs: 30_000 });
      const reference = `127.0.0.1:${port}/me/app:latest`;
      await engine.docker(['tag', v2.reference, reference]);
      await engine.docker(['push', reference]);
      await engine.docker(['rmi', reference]);
      await engine.docker(['pull', reference]);
      const { stdout } = await engine.docker(['image', 'inspect', '--format', '{{.Id}}', reference]);
      expect(stdout.trim()).to.equal(v2.id);
    } finally {
      await stopChild(child);
    }
  });

  it('docker push by a user past the quota shows the message, and the hold keeps none of its layers', async function () {
    await engine.docker(['login', '--username', QUOTA_USER.username, '--password-stdin', host], { input: `${QUOTA_USER.password}\n` });
    const reference = `${host}/dora/app:v1`;
    await engine.docker(['tag', v1.reference, reference]);
    const failure = (await engine.docker(['push', reference]).catch((err: unknown) => err)) as { stderr?: string };
    expect(failure).to.be.instanceOf(Error);
    const message = new RegExp(`denied: quota exceeded for ${QUOTA_USER.did} on did:web:hold\\.test: [\\d.]+ (B|kB|MB) used of 2 MB \\(tier small\\); this push adds ([\\d.]+) MB`).exec(failure.stderr ?? '');
    expect(message, failure.stderr).to.not.equal(null);
    expect(Number(message?.[2]), 'stopped within a few parts of the limit, not after the 200 MiB layer').to.be.lessThan(100);
    await engine.docker(['rmi', reference]);
    console.log(`      ${failure.stderr?.trim().split('\n').pop()}`);
  });
  it('docker login as a robot account with a token scoped to alice/ci pushes there, and is refused on alice/other with DENIED', async function () {
    await stack.holdfast(['robot', 'create', STACK_USER.username, 'ci']);
    await stack.holdfast(['access', 'grant', STACK_USER.handle, `${STACK_USER.username}+ci`, 'push']);
    const created = JSON.parse(await stack.holdfast(['token', 'create', '--user', `${STACK_USER.username}+ci`, '--name', 'docker ci', '--repository', 'alice/ci', '--actions', 'pull,push'])) as { secret: string; id: string };
    expect(created.secret).to.match(/^hfat_/);
    // The registry rereads the accounts every second.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const login = await engine.docker(['login', '--username', `${STACK_USER.username}+ci`, '--password-stdin', host], { input: `${created.secret}\n` });
    expect(login.stdout).to.include('Login Succeeded');
    const allowed = `${host}/alice/ci:v2`;
    await engine.docker(['tag', v2.reference, allowed]);
    await engine.docker(['push', allowed]);
    const pushed = await fetch(`${stack.registries[0]}/v2/alice/ci/manifests/v2`, {
      method: 'HEAD',
      headers: { authorization: `Basic ${Buffer.from(`${STACK_USER.username}:${STACK_USER.password}`).toString('base64')}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(pushed.status).to.equal(200);
    const elsewhere = `${host}/alice/other:v2`;
    await engine.docker(['tag', v2.reference, elsewhere]);
    const failure = (await engine.docker(['push', elsewhere]).catch((err: unknown) => err)) as { stderr?: string };
    expect(failure).to.be.instanceOf(Error);
    expect(failure.stderr).to.match(new RegExp(`denied: alice\\+ci with access token ${created.id} may not (pull from|push to) alice/other`));
    console.log(`      ${failure.stderr?.trim().split('\n').pop()}`);
    await engine.docker(['rmi', allowed, elsewhere]);
  });
});
