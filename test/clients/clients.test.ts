import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sharedMinio } from '../support/global-fixtures.ts';
import { buildImage, type BuiltImage } from '../support/oci-layout.ts';
import { CLIENT_POLICIES, QUOTA_USER, STACK_USER, startStack, type RunningStack } from '../support/stack.ts';
import { craneBinary, orasBinary, runTool, skopeoBinary } from '../support/clients.ts';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';

const MiB = 1024 * 1024;

async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Every blob of `image` is in the pulled layout `dir`, byte-identical. */
async function expectSameBlobs(image: BuiltImage, dir: string): Promise<void> {
  for (const blob of image.blobs) {
    const file = path.join(dir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length));
    expect((await stat(file)).size, blob.digest).to.equal(blob.size);
    expect(await fileDigest(file)).to.equal(blob.digest);
  }
}

describe('real clients against registry + hold + MinIO', function () {
  this.timeout(600_000);
  let stack: RunningStack;
  let work: string;
  let image: BuiltImage;
  let host: string;
  let authDir: string;
  const prefix = `clients-${process.pid}`;

  before(async function () {
    const minio = await sharedMinio();
    stack = await startStack({ minio, prefix, ...CLIENT_POLICIES });
    host = new URL(stack.registries[0] as string).host;
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-clients-'));
    image = await buildImage(path.join(work, 'image'), [200 * MiB, 3 * MiB + 17, 1234, 0]);
    authDir = path.join(work, 'auth');
    const auth = Buffer.from(`${STACK_USER.username}:${STACK_USER.password}`).toString('base64');
    await runTool('mkdir', ['-p', authDir]);
    await writeFile(path.join(authDir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }), { mode: 0o600 });
  });
  after(async function () {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function expectBlobsInBucket(): Promise<void> {
    const minio = await sharedMinio();
    const keys = new Set<string>();
    let token: string | undefined;
    do {
      const page = await minio.client.send(new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/docker/`, ContinuationToken: token }));
      for (const item of page.Contents ?? []) keys.add(item.Key as string);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    for (const blob of image.blobs) {
      const hex = blob.digest.slice('sha256:'.length);
      expect(keys.has(`${prefix}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`), blob.digest).to.equal(true);
    }
  }

  it('skopeo pushes and pulls the image byte-identically', async function () {
    const skopeo = await skopeoBinary();
    const authfile = path.join(authDir, 'config.json');
    const reference = `docker://${host}/alice/skopeo:v1`;
    await runTool(skopeo, ['copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-authfile', authfile, `oci:${image.dir}:${image.tag}`, reference]);
    const pulled = path.join(work, 'skopeo-pulled');
    await runTool(skopeo, ['copy', '--preserve-digests', '--src-tls-verify=false', '--src-authfile', authfile, reference, `oci:${pulled}:v1`]);
    await expectSameBlobs(image, pulled);
    await expectBlobsInBucket();
  });

  it('crane pushes and pulls the image byte-identically', async function () {
    const crane = await craneBinary();
    const env = { ...process.env, DOCKER_CONFIG: authDir };
    const reference = `${host}/alice/crane:v1`;
    const pushed = await runTool(crane, ['push', '--insecure', image.dir, reference], env);
    expect(pushed.trim()).to.equal(`${reference.split(':v1')[0]}@${image.manifestDigest}`);
    const pulled = path.join(work, 'crane-pulled');
    await runTool(crane, ['pull', '--insecure', '--format', 'oci', reference, pulled], env);
    await expectSameBlobs(image, pulled);
    expect(await runTool(crane, ['digest', '--insecure', reference], env)).to.equal(`${image.manifestDigest}\n`);
  });

  it('crane pulls with a read-only access token (holdfast token create) and is refused a push with DENIED', async function () {
    const crane = await craneBinary();
    const created = JSON.parse(await stack.holdfast(['token', 'create', '--user', STACK_USER.username, '--name', 'crane read-only', '--repository', 'alice/crane', '--actions', 'pull'])) as { secret: string };
    const readOnly = path.join(work, 'read-only-auth');
    await runTool('mkdir', ['-p', readOnly]);
    await writeFile(path.join(readOnly, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${STACK_USER.username}:${created.secret}`).toString('base64') } } }), { mode: 0o600 });
    const env = { ...process.env, DOCKER_CONFIG: readOnly };
    const pulled = path.join(work, 'crane-read-only-pulled');
    await runTool(crane, ['pull', '--insecure', '--format', 'oci', `${host}/alice/crane:v1`, pulled], env);
    await expectSameBlobs(image, pulled);
    const refused = (await runTool(crane, ['push', '--insecure', image.dir, `${host}/alice/crane:v2`], env).catch((err: unknown) => err)) as Error;
    expect(refused).to.be.instanceOf(Error);
    expect(refused.message).to.match(/DENIED: alice with access token \w+ may not push to alice\/crane/);
  });

  it('oras copies the image in and out byte-identically', async function () {
    const oras = await orasBinary();
    const config = path.join(authDir, 'config.json');
    const reference = `${host}/alice/oras:v1`;
    await runTool(oras, ['cp', '--from-oci-layout', `${image.dir}:${image.tag}`, reference, '--to-plain-http', '--to-registry-config', config]);
    const pulled = path.join(work, 'oras-pulled');
    await runTool(oras, ['cp', reference, '--to-oci-layout', `${pulled}:v1`, '--from-plain-http', '--from-registry-config', config]);
    await expectSameBlobs(image, pulled);
    const index = JSON.parse(await readFile(path.join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((entry) => entry.digest)).to.include(image.manifestDigest);
  });

  it('crane cannot move or delete an immutable tag, and re-tagging the same digest succeeds', async function () {
    const crane = await craneBinary();
    const env = { ...process.env, DOCKER_CONFIG: authDir };
    const repo = `${host}/alice/released`;
    await runTool(crane, ['push', '--insecure', image.dir, `${repo}:v1`], env);
    // A second image: the same layers under a config with one more label.
    await runTool(crane, ['mutate', '--insecure', '--label', 'rebuilt=yes', `${repo}:v1`, '--tag', `${repo}:next`], env);
    const [v1, next] = [await runTool(crane, ['digest', '--insecure', `${repo}:v1`], env), await runTool(crane, ['digest', '--insecure', `${repo}:next`], env)];
    expect(next).to.not.equal(v1);

    const moved = (await runTool(crane, ['tag', '--insecure', `${repo}:next`, 'v1'], env).catch((err: unknown) => err)) as Error;
    expect(moved).to.be.instanceOf(Error);
    expect(moved.message).to.contain('DENIED: tag v1 in alice/released is immutable and points at');
    const deleted = (await runTool(crane, ['delete', '--insecure', `${repo}@${v1.trim()}`], env).catch((err: unknown) => err)) as Error;
    expect(deleted.message).to.contain(`DENIED: manifest ${v1.trim()} in alice/released is held by the immutable tag v1`);
    expect(await runTool(crane, ['digest', '--insecure', `${repo}:v1`], env)).to.equal(v1);

    await runTool(crane, ['tag', '--insecure', `${repo}@${v1.trim()}`, 'v1'], env);
    await runTool(crane, ['tag', '--insecure', `${repo}:next`, 'v2'], env);
    await runTool(crane, ['tag', '--insecure', `${repo}:v1`, 'next'], env);
    expect(await runTool(crane, ['digest', '--insecure', `${repo}:next`], env), 'tags outside the rule still move').to.equal(v1);
    console.log(`      crane: ${moved.message.split('\n').find((line) => line.includes('DENIED'))?.trim()}`);
  });

  it('crane sees the quota message when a push would pass the limit', async function () {
    const crane = await craneBinary();
    const auth = path.join(work, 'quota-auth');
    await runTool('mkdir', ['-p', auth]);
    await writeFile(path.join(auth, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${QUOTA_USER.username}:${QUOTA_USER.password}`).toString('base64') } } }), { mode: 0o600 });
    const failure = (await runTool(crane, ['push', '--insecure', image.dir, `${host}/dora/app:v1`], { ...process.env, DOCKER_CONFIG: auth }).catch((err: unknown) => err)) as Error;
    expect(failure).to.be.instanceOf(Error);
    const line = failure.message.split('\n').find((text) => text.includes('quota exceeded')) ?? failure.message;
    expect(line).to.match(new RegExp(`DENIED: quota exceeded for ${QUOTA_USER.did} on did:web:hold\\.test: [\\d.]+ (B|kB|MB) used of 2 MB \\(tier small\\); this push adds [\\d.]+ MB`));
    console.log(`      crane: ${line.trim()}`);
  });
});
