import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import HoldfastStorage from '../../src/verdaccio/index.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { putToUrl, sha256 } from '../support/bytes.ts';
import { pluginOptions } from './plugin-options.ts';

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
