import { expect } from 'chai';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient, HoldClientError } from '../../src/driver/hold-client.ts';
import { BACKENDS, DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { putToUrl, randomBlob, sha256 } from '../support/bytes.ts';

/**
 * One hold, two registries (two trusted issuers), as a shared deployment
 * runs it. Registry one is the harness's own client; registry two signs its
 * tokens as another issuer.
 */
const SECOND_ISSUER = 'did:web:registry-two.test';

function secondRegistry(hold: TestHold): HoldClient {
  return new HoldClient({
    url: hold.url,
    audience: hold.hold.config.identity,
    signer: new ServiceTokenSigner({ issuer: SECOND_ISSUER, privateKey: hold.keys.privateKey }),
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
}

/** Uploads `blob` through a single-PUT upload and publishes it as `client`'s registry. */
async function publishAs(client: HoldClient, blob: Buffer): Promise<{ digest: string; existed: boolean }> {
  const digest = sha256(blob);
  const put = await client.putPresignedUrl(DIDS.owner, digest);
  expect((await putToUrl(put.url, blob)).status).to.equal(200);
  const moved = await client.move(DIDS.owner, put.upload_name as string, digest);
  return { digest, existed: moved.existed };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => (err instanceof HoldClientError ? err.code : String(err)),
  );
}

for (const backend of BACKENDS) {
  describe(`a hold shared by two registries (${backend})`, function () {
    let hold: TestHold;
    let two: HoldClient;

    beforeEach(async function () {
      hold = await startTestHold(backend, { extraIssuers: [SECOND_ISSUER] });
      two = secondRegistry(hold);
    });
    afterEach(async function () {
      await two?.close();
      await hold?.close();
    });

    it("/delete by one registry keeps a blob the other still claims, and leaves no stale claim when the last one goes", async function () {
      const blob = randomBlob(2048);
      const { digest } = await publishAs(hold.client, blob);
      expect((await publishAs(two, blob)).existed).to.equal(true);

      expect(await hold.client.delete(DIDS.owner, digest)).to.deep.equal({ deleted: false });
      expect((await two.stat(DIDS.owner, digest)).size, 'registry two still has its blob').to.equal(2048);
      expect(await hold.inspect.keys('holdfast/claims/'), "only registry two's claim is left").to.have.length(1);

      expect(await two.delete(DIDS.owner, digest)).to.deep.equal({ deleted: true });
      expect(await codeOf(hold.client.stat(DIDS.owner, digest))).to.equal('BLOB_UNKNOWN');
      expect(await hold.inspect.keys('holdfast/claims/')).to.deep.equal([]);
    });
  });
}
