import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import createHoldDriver, { isDriverError, type HoldDriver } from '../../src/driver/index.ts';
import type { WriterStepHook } from '../../src/driver/writer-steps.ts';
import HoldfastStorage from '../../src/verdaccio/index.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { putToUrl, sha256 } from '../support/bytes.ts';
import { pluginOptions } from './plugin-options.ts';
import { publishTarball, readTarball, unpublishTarball } from './tarballs.ts';

const SECOND_ISSUER = 'did:web:registry-two.test';

describe('Verdaccio plugin on a hold shared with another registry (hold + MinIO)', function () {
  let hold: TestHold;
  let work: string;
  let two: HoldClient;

  before(async function () {
    hold = await startTestHold('s3', { extraIssuers: [SECOND_ISSUER] });
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-verdaccio-shared-'));
    await writeFile(path.join(work, 'driver.key'), hold.keys.privateKey, { mode: 0o600 });
    two = new HoldClient({ url: hold.url, audience: AUDIENCE, signer: new ServiceTokenSigner({ issuer: SECOND_ISSUER, privateKey: hold.keys.privateKey }) });
  });
  after(async function () {
    await two?.close();
    await hold?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("unpublishing a tarball keeps bytes another registry still claims", async function () {
    const plugin = new HoldfastStorage(
      {
        did: DIDS.owner,
        metadata: { kind: 'sqlite', path: './holdfast.db' },
        driver: { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKeyFile: './driver.key', provider: 'minio' },
      },
      pluginOptions(path.join(work, 'config.yaml')),
    );
    try {
      const tarball = randomBytes(4096);
      const digest = sha256(tarball);
      const storage = plugin.getPackageStorage('shared-pkg');
      const stream = storage.writeTarball('shared-pkg-1.0.0.tgz');
      const stored = new Promise<void>((resolve, reject) => {
        stream.once('success', resolve);
        stream.once('error', reject);
      });
      await new Promise((resolve) => stream.once('open', resolve));
      stream.end(tarball);
      stream.done();
      await stored;

      // The other registry pushes the same bytes: its move finds them and only adds its claim.
      const put = await two.putPresignedUrl(DIDS.owner, digest);
      await putToUrl(put.url, tarball);
      expect((await two.move(DIDS.owner, put.upload_name as string, digest)).existed).to.equal(true);

      await new Promise<void>((resolve, reject) => storage.deletePackage('shared-pkg-1.0.0.tgz', (err) => (err ? reject(err as Error) : resolve())));
      expect((await two.stat(DIDS.owner, digest)).size, 'the other registry still serves it').to.equal(4096);
      expect(await two.release(DIDS.owner, digest)).to.deep.equal({ deleted: true, remaining_claims: 0 });
    } finally {
      await plugin.close();
    }
  });
});

/**
 * Issue 20: the README used to configure the plugin and the registry with one
 * issuer, and the hold keyed claims by issuer only, so the two shared one
 * claim while each counted references only in its own tables.
 */
describe('Verdaccio plugin and a registry signing as the same issuer (hold + MinIO)', function () {
  let hold: TestHold;
  let work: string;
  let registryDriver: HoldDriver;
  let plugin: HoldfastStorage;
  /** Awaited after the plugin's writers publish (the `moved` step), when set. */
  let afterMove: WriterStepHook | undefined;

  before(async function () {
    hold = await startTestHold('s3');
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-verdaccio-issuer-'));
    await writeFile(path.join(work, 'driver.key'), hold.keys.privateKey, { mode: 0o600 });
    registryDriver = createHoldDriver({ hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKey: hold.keys.privateKey, provider: 'minio' });
    plugin = new HoldfastStorage(
      {
        did: DIDS.owner,
        metadata: { kind: 'sqlite', path: './holdfast.db' },
        driver: { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKeyFile: './driver.key', provider: 'minio' },
      },
      pluginOptions(path.join(work, 'config.yaml')),
      { writerStep: async (step, upload) => (step === 'moved' ? afterMove?.(step, upload) : undefined) },
    );
  });
  after(async function () {
    await plugin?.close();
    await registryDriver?.close();
    await hold?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function pushToRegistry(bytes: Buffer): Promise<string> {
    const writer = await registryDriver.blobStore(DIDS.owner).create();
    await writer.write(bytes);
    await writer.close();
    return (await writer.commit({ digest: sha256(bytes), size: bytes.length })).digest;
  }

  it('an npm unpublish of bytes a registry also pushed leaves the registry\'s blob', async function () {
    const layer = randomBytes(8192);
    const digest = await pushToRegistry(layer);
    const storage = plugin.getPackageStorage('same-bytes');
    await publishTarball(storage, 'same-bytes-1.0.0.tgz', layer);
    await unpublishTarball(storage, 'same-bytes-1.0.0.tgz');
    expect((await registryDriver.blobStore(DIDS.owner).stat(digest)).size, 'the registry still has its blob').to.equal(layer.length);
  });

  it('a registry release (its garbage collection) of bytes an npm tarball also has leaves the tarball', async function () {
    const bytes = randomBytes(8192);
    const digest = await pushToRegistry(bytes);
    const storage = plugin.getPackageStorage('collected');
    await publishTarball(storage, 'collected-1.0.0.tgz', bytes);
    expect(await registryDriver.blobStore(DIDS.owner).release(digest), 'the npm claim keeps the bytes').to.equal(false);
    expect((await readTarball(storage, 'collected-1.0.0.tgz')).equals(bytes)).to.equal(true);
  });

  it('an unpublish that releases the bytes while a publish of the same bytes records them: the new tarball is either whole or refused, never recorded without its bytes', async function () {
    const bytes = randomBytes(4096);
    const storage = plugin.getPackageStorage('racing');
    await publishTarball(storage, 'racing-1.0.0.tgz', bytes);
    // The second publish of the same bytes finds them at the hold (existed) and stops before recording; the first version is unpublished meanwhile.
    let unpublished: Promise<void> | undefined;
    afterMove = async () => {
      afterMove = undefined;
      unpublished = unpublishTarball(storage, 'racing-1.0.0.tgz');
      await unpublished;
    };
    const republished = await publishTarball(storage, 'racing-1.0.1.tgz', bytes).then(
      () => 'recorded',
      (err: unknown) => (err as { code?: string }).code ?? String(err),
    );
    await unpublished;
    if (republished === 'recorded') {
      expect((await readTarball(storage, 'racing-1.0.1.tgz')).equals(bytes), 'a recorded tarball has its bytes').to.equal(true);
    } else {
      expect(republished, 'refused as retryable').to.equal('EUNAVAILABLE');
      const read = await readTarball(storage, 'racing-1.0.1.tgz').catch((err: unknown) => err);
      expect((read as { code?: string }).code, 'nothing recorded').to.equal('ENOENT');
      // Publishing it again works: fresh bytes.
      await publishTarball(storage, 'racing-1.0.1.tgz', bytes);
      expect((await readTarball(storage, 'racing-1.0.1.tgz')).equals(bytes)).to.equal(true);
    }
    expect(isDriverError(await registryDriver.blobStore(DIDS.owner).stat(sha256(bytes)).catch((err: unknown) => err)), 'the bytes are stored').to.equal(false);
  });
});

