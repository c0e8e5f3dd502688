import { expect } from 'chai';
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand, CompleteMultipartUploadCommand, AbortMultipartUploadCommand } from '@aws-sdk/client-s3';
import { DIDS, startTestHold } from '../support/hold-harness.ts';
import { MiB, putToUrl, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { startProviderRulesProxy, type ProviderRules, type ProviderRulesProxy } from '../support/provider-rules-proxy.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import type { HoldClientError } from '../../src/driver/hold-client.ts';

const PROFILES: readonly ProviderRules[] = ['r2', 'b2', 'storj'];

for (const rules of PROFILES) {
  describe(`provider rules: ${rules} (a rules proxy in front of MinIO)`, function () {
    this.timeout(300_000);
    let proxy: ProviderRulesProxy;
    let fixture: DriverFixture;

    before(async function () {
      proxy = await startProviderRulesProxy((await sharedMinio()).endpoint, rules);
      // The hold's own S3 calls and the presigned URLs both go through the proxy.
      fixture = await startDriverFixture('s3', { s3: { provider: rules, endpoint: proxy.url, publicEndpoint: proxy.url } });
    });
    after(async function () {
      await fixture?.close();
      await proxy?.close();
    });

    it('the proxy really enforces its rules', async function () {
      const minio = await sharedMinio();
      // The SDK's default checksum behaviour, as a careless client would send it.
      const careless = new S3Client({ endpoint: proxy.url, region: minio.region, forcePathStyle: true, credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey } });
      const key = `${fixture.hold.prefix}probe`;
      const started = await careless.send(new CreateMultipartUploadCommand({ Bucket: minio.bucket, Key: key }));
      const upload = (partNumber: number, size: number) =>
        careless.send(new UploadPartCommand({ Bucket: minio.bucket, Key: key, UploadId: started.UploadId, PartNumber: partNumber, Body: randomBlob(size) }));
      if (rules === 'storj') {
        const etags = [await upload(1, 5 * MiB), await upload(2, 6 * MiB), await upload(3, 1)].map((part) => part.ETag);
        await careless.send(new CompleteMultipartUploadCommand({ Bucket: minio.bucket, Key: key, UploadId: started.UploadId, MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) } }));
      } else {
        const error = await upload(1, 5 * MiB).catch((err: unknown) => err);
        expect((error as { name?: string }).name, 'SDK default checksums are refused').to.equal('InvalidRequest');
        await careless.send(new AbortMultipartUploadCommand({ Bucket: minio.bucket, Key: key, UploadId: started.UploadId }));
      }
      careless.destroy();
      if (rules === 'r2') {
        // Unequal non-trailing parts through the hold's own API are refused.
        const hold = fixture.hold.client;
        const session = await hold.startMultipart(DIDS.owner);
        const parts = [];
        for (const [index, size] of [5 * MiB, 6 * MiB, 10].entries()) {
          const url = await hold.partPresignedUrl(DIDS.owner, session.upload_name, session.upload_id, index + 1);
          parts.push({ part_number: index + 1, etag: (await putToUrl(url.url, randomBlob(size))).etag as string });
        }
        const refused = (await hold.completeMultipart(DIDS.owner, session.upload_name, session.upload_id, parts).catch((err: unknown) => err)) as HoldClientError;
        expect(refused.code).to.equal('INVALID_PART');
        await hold.abortMultipart(DIDS.owner, session.upload_name, session.upload_id);
      }
    });

    for (const [label, size] of [
      ['0 bytes', 0],
      ['1 byte', 1],
      ['5 MiB + 1', 5 * MiB + 1],
      ['3 parts + a tail', 15 * MiB + 7],
    ] as const) {
      it(`stores ${label} byte-exact`, async function () {
        const store = fixture.driver({ provider: rules, partSize: 5 * MiB }).blobStore(DIDS.owner);
        const blob = randomBlob(size);
        const writer = await store.create();
        await writer.write(blob);
        await writer.commit({ digest: sha256(blob), size });
        expect((await readAll(await store.open(sha256(blob)))).equals(blob)).to.equal(true);
      });
    }

    it('keeps every non-final part equal across odd PATCH shapes (7 + 3 + 9 MiB + 1 byte)', async function () {
      proxy.refusals.length = 0;
      const store = fixture.driver({ provider: rules, partSize: 5 * MiB }).blobStore(DIDS.owner);
      const shape = [7 * MiB, 3 * MiB, 9 * MiB, 1];
      const blob = randomBlob(shape.reduce((a, b) => a + b, 0));
      let writer = await store.create();
      let offset = 0;
      for (const length of shape) {
        await writer.write(blob.subarray(offset, (offset += length)));
        await writer.close();
        writer = await store.resume(writer.id);
      }
      await writer.commit({ digest: sha256(blob), size: blob.length });
      expect((await readAll(await store.open(sha256(blob)))).equals(blob)).to.equal(true);
      expect(proxy.refusals, 'nothing the driver or hold sent was refused').to.deep.equal([]);
    });

    it(rules === 'storj' ? 'refuses to move a blob over the copy threshold with a clear 501' : 'moves a blob over the copy threshold with UploadPartCopy', async function () {
      proxy.refusals.length = 0;
      const hold = await startTestHold('s3', { s3: { provider: rules, endpoint: proxy.url, publicEndpoint: proxy.url, copyPartThreshold: 5 * MiB, copyPartSize: 5 * MiB } });
      try {
        const blob = randomBlob(6 * MiB);
        const put = await hold.client.putPresignedUrl(DIDS.owner, sha256(blob));
        await putToUrl(put.url, blob);
        const moved = await hold.client.move(DIDS.owner, put.upload_name as string, sha256(blob)).catch((err: unknown) => err);
        if (rules === 'storj') {
          expect((moved as HoldClientError).status).to.equal(501);
          expect(proxy.refusals, 'the hold never tried UploadPartCopy').to.deep.equal([]);
        } else {
          expect((moved as { size: number }).size).to.equal(blob.length);
        }
      } finally {
        await hold.close();
      }
    });
  });
}
