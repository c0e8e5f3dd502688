import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { issuerId } from '../../src/hold/keys.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import { DIDS, ISSUER, startTestHold, type BackendKind, type TestHold, type TestHoldOptions } from '../support/hold-harness.ts';
import { getFromUrl, putToUrl, randomBlob, sha256 } from '../support/bytes.ts';

/** Every backend and publish mode: the filesystem (copies), S3 by reference, S3 by copy. */
const MODES: readonly { name: string; backend: BackendKind; options: TestHoldOptions }[] = [
  { name: 'fs', backend: 'fs', options: {} },
  { name: 's3, publish: reference', backend: 's3', options: { s3: { publish: 'reference' } } },
  { name: 's3, publish: copy', backend: 's3', options: { s3: { publish: 'copy' } } },
];

async function expectServes(hold: TestHold, digest: string, blob: Buffer): Promise<void> {
  expect((await hold.client.stat(DIDS.owner, digest)).size).to.equal(blob.length);
  const served = await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url);
  expect(served.status).to.equal(200);
  expect(served.body.equals(blob), 'the digest serves the bytes that were verified').to.equal(true);
}

for (const mode of MODES) {
  describe(`bytes under a digest never change after /move (${mode.name})`, function () {
    let hold: TestHold;
    let now = new Date();

    beforeEach(async function () {
      now = new Date();
      hold = await startTestHold(mode.backend, { ...mode.options, config: { uploadTtlSeconds: 3600 }, now: () => now });
    });
    afterEach(async function () {
      await hold?.close();
    });

    it('a re-PUT through the single-PUT URL after /move changes nothing the digest serves', async function () {
      const blob = randomBlob(2048);
      const digest = sha256(blob);
      const put = await hold.client.putPresignedUrl(DIDS.owner, digest);
      expect((await putToUrl(put.url, blob)).status).to.equal(200);
      await hold.client.move(DIDS.owner, put.upload_name as string, digest);

      const replay = await putToUrl(put.url, randomBlob(109));
      await expectServes(hold, digest, blob);
      // Refused (4xx; moto answers 500): what matters is that the digest still serves the verified bytes.
      expect(replay.status, 'the URL no longer writes anything').to.be.at.least(400);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);

      now = new Date(now.getTime() + 2 * 3600 * 1000);
      await hold.hold.runJanitor();
      expect(await hold.client.release(DIDS.owner, digest)).to.deep.include({ deleted: true });
      expect(await hold.inspect.keys(), 'nothing is left once the blob is released').to.deep.equal([]);
    });

    it('publishes an empty blob through the single PUT, and refuses a wrong size without changing the upload', async function () {
      const empty = Buffer.alloc(0);
      const digest = sha256(empty);
      const put = await hold.client.putPresignedUrl(DIDS.owner, digest);
      expect((await putToUrl(put.url, empty)).status).to.equal(200);
      const wrong = await hold.client.move(DIDS.owner, put.upload_name as string, digest, { size: 1 }).catch((err: unknown) => err);
      expect((wrong as { code?: string }).code).to.equal('SIZE_INVALID');
      expect(await hold.client.move(DIDS.owner, put.upload_name as string, digest, { size: 0 })).to.deep.include({ size: 0, existed: false });
      expect((await hold.client.stat(DIDS.owner, digest)).size).to.equal(0);
    });

    it('re-PUTs through part and staged-segment URLs after /move change nothing, and the janitor collects what they leave', async function () {
      const blob = randomBlob(4096);
      const digest = sha256(blob);
      const started = await hold.client.startMultipart(DIDS.owner);
      const staged = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
      await putToUrl(staged.url, blob.subarray(0, 100));
      await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, staged: [{ offset: 0, size: 100, segment_id: staged.segment_id as string }] });
      const part = await hold.client.partPresignedUrl(DIDS.owner, started.upload_name, started.upload_id, 1);
      const etag = (await putToUrl(part.url, blob)).etag as string;
      await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, [{ part_number: 1, etag }]);
      await hold.client.move(DIDS.owner, started.upload_name, digest);

      expect((await putToUrl(part.url, randomBlob(109))).status, 'a part URL dies with its upload').to.be.at.least(400);
      await putToUrl(staged.url, randomBlob(109));
      await expectServes(hold, digest, blob);

      now = new Date(now.getTime() + 2 * 3600 * 1000);
      await hold.hold.runJanitor();
      expect(await hold.inspect.keys('holdfast/uploads/'), 'no orphan segment is left').to.deep.equal([]);
      await expectServes(hold, digest, blob);
      expect(await hold.client.release(DIDS.owner, digest)).to.deep.include({ deleted: true });
      expect(await hold.inspect.keys(), 'nothing is left once the blob is released').to.deep.equal([]);
    });
  });
}

describe('a single upload from before single uploads were multipart (s3, publish: reference)', function () {
  it('is published by copy, and its record and any late PUT are collected after the TTL', async function () {
    let now = new Date();
    const hold = await startTestHold('s3', { config: { uploadTtlSeconds: 3600 }, now: () => now });
    try {
      const minio = await sharedMinio();
      const blob = randomBlob(1500);
      const digest = sha256(blob);
      const uuid = randomUUID();
      const record = { version: 2, name: `uploads/temp-${uuid}`, did: DIDS.owner, kind: 'single', upload_id: '', state: 'open', created_at: now.toISOString(), updated_at: now.toISOString(), parts: [], staged: [], size: 0 };
      const put = (key: string, body: Uint8Array | string) => minio.client.send(new PutObjectCommand({ Bucket: minio.bucket, Key: `${hold.prefix}${key}`, Body: body }));
      await put(`holdfast/uploads/${uuid}/session.json`, JSON.stringify(record));
      await put(`holdfast/objects/${uuid}`, blob);

      expect(await hold.client.move(DIDS.owner, record.name, digest)).to.deep.include({ existed: false });
      await put(`holdfast/objects/${uuid}`, randomBlob(109));
      await expectServes(hold, digest, blob);

      now = new Date(now.getTime() + 2 * 3600 * 1000);
      await hold.hold.runJanitor();
      expect(await hold.inspect.keys('holdfast/'), 'only the claim is left').to.deep.equal([`holdfast/claims/sha256/${digest.slice('sha256:'.length)}/${issuerId(ISSUER)}`]);
      await expectServes(hold, digest, blob);
    } finally {
      await hold.close();
    }
  });
});
