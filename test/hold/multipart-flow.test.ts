import { expect } from 'chai';
import { BACKENDS, DIDS, publishBlob, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { MiB, getFromUrl, putToUrl, randomBlob, sha256 } from '../support/bytes.ts';
import { HoldClientError } from '../../src/driver/hold-client.ts';

for (const backend of BACKENDS) {
  describe(`hold multipart flow (${backend})`, function () {
    let hold: TestHold;
    before(async function () {
      hold = await startTestHold(backend);
    });
    after(async function () {
      await hold?.close();
    });

    async function uploadParts(name: string, uploadId: string, parts: Buffer[]) {
      const done: { part_number: number; etag: string; size: number }[] = [];
      for (const [index, bytes] of parts.entries()) {
        const presigned = await hold.client.partPresignedUrl(DIDS.owner, name, uploadId, index + 1);
        const put = await putToUrl(presigned.url, bytes);
        expect(put.status, put.text).to.equal(200);
        expect(put.etag).to.be.a('string');
        done.push({ part_number: index + 1, etag: put.etag as string, size: bytes.length });
      }
      return done;
    }

    it('uploads 5 MiB + 5 MiB + 1 byte, completes, moves, and reads back byte-exact', async function () {
      const parts = [randomBlob(5 * MiB), randomBlob(5 * MiB), randomBlob(1)];
      const blob = Buffer.concat(parts);
      const digest = sha256(blob);
      const started = await hold.client.startMultipart(DIDS.owner);
      expect(started.upload_name).to.match(/^uploads\/temp-[0-9a-f-]{36}$/);
      expect(Date.parse(started.expires_at)).to.be.greaterThan(Date.now());
      const done = await uploadParts(started.upload_name, started.upload_id, parts);
      const completed = await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, done);
      expect(completed.size).to.equal(blob.length);
      const moved = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length });
      expect(moved).to.deep.equal({ digest, size: blob.length, existed: false });
      const hex = digest.slice('sha256:'.length);
      expect(await hold.inspect.keys('docker/')).to.deep.equal([`docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`]);
      expect(await hold.inspect.keys('holdfast/claims/'), 'the moving registry claims the blob').to.have.length(1);
      const get = await hold.client.getPresignedUrl(DIDS.owner, digest);
      const read = await getFromUrl(get.url);
      expect(read.status).to.equal(200);
      expect(sha256(read.body)).to.equal(digest);
      expect(await hold.client.stat(DIDS.owner, digest)).to.deep.equal({ digest, size: blob.length });
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
    });

    it('/move with parts completes and publishes in one call, and a repeat of it answers the same', async function () {
      const parts = [randomBlob(5 * MiB), randomBlob(1)];
      const blob = Buffer.concat(parts);
      const digest = sha256(blob);
      const started = await hold.client.startMultipart(DIDS.owner);
      const done = await uploadParts(started.upload_name, started.upload_id, parts);
      const moved = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length, parts: done });
      expect(moved).to.deep.equal({ digest, size: blob.length, existed: false });
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
      expect(await hold.inspect.keys('holdfast/uploads/'), 'the record and nothing else of the upload').to.deep.equal([]);
      expect(sha256((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body)).to.equal(digest);
      // The answer was lost: the repeat finds the upload gone, and the blob is there.
      const again = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length, parts: done }).catch((err: unknown) => err);
      expect((again as HoldClientError).code).to.equal('UPLOAD_UNKNOWN');
      expect(await hold.client.stat(DIDS.owner, digest)).to.deep.equal({ digest, size: blob.length });
    });

    // Both backends accept a repeated completion for the very parts they assembled (the object's multipart ETag).
    it('/move with parts after a hold died between completing the upload and publishing it: the repeat with the same parts publishes', async function () {
      const parts = [randomBlob(5 * MiB), randomBlob(3)];
      const blob = Buffer.concat(parts);
      const digest = sha256(blob);
      const started = await hold.client.startMultipart(DIDS.owner);
      const done = await uploadParts(started.upload_name, started.upload_id, parts);
      const uuid = started.upload_name.slice('uploads/temp-'.length);
      // What that hold left: the provider's upload completed, the record still open.
      await hold.hold.backend.completeMultipartUpload(`${hold.prefix}holdfast/objects/${uuid}`, started.upload_id, done.map((part) => ({ partNumber: part.part_number, etag: part.etag })));
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
      expect(await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length, parts: done })).to.deep.equal({ digest, size: blob.length, existed: false });
      expect(sha256((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body)).to.equal(digest);
    });

    it('after a hold died between completing the upload and recording it, /upload-status reports it completed; /move without parts (after reading it back) publishes it, /move naming parts is refused', async function () {
        const parts = [randomBlob(5 * MiB), randomBlob(3)];
        const blob = Buffer.concat(parts);
        const digest = sha256(blob);
        const started = await hold.client.startMultipart(DIDS.owner);
        const done = await uploadParts(started.upload_name, started.upload_id, parts);
        await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, parts: done.slice(0, 1) });
        const uuid = started.upload_name.slice('uploads/temp-'.length);
        await hold.hold.backend.completeMultipartUpload(`${hold.prefix}holdfast/objects/${uuid}`, started.upload_id, done.map((part) => ({ partNumber: part.part_number, etag: part.etag })));
        // Another process resumes: the provider no longer lists the upload, but its object is there.
        const status = await hold.client.uploadStatus(DIDS.owner, started.upload_name, started.upload_id);
        expect(status).to.deep.include({ state: 'completed', completed_size: blob.length });
        // Which parts it was completed from is not known, so no part list is taken for its content; the object is read back instead.
        const named = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length, parts: done }).catch((err: unknown) => err);
        expect((named as HoldClientError).code, 'a publish naming parts').to.equal('UPLOAD_STATE_CONFLICT');
        const completed = await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, [done[0] as never]);
        expect(completed.size, 'a completion is answered with the object as it is, and changes nothing').to.equal(blob.length);
        expect(await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length })).to.deep.equal({ digest, size: blob.length, existed: false });
        expect(sha256((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body)).to.equal(digest);
      });

    it('/move with parts refuses an upload another writer completed from other parts, and publishes nothing', async function () {
      const ours = [randomBlob(5 * MiB), randomBlob(4)];
      const theirs = [randomBlob(5 * MiB), randomBlob(4)];
      const started = await hold.client.startMultipart(DIDS.owner);
      const first = await uploadParts(started.upload_name, started.upload_id, ours);
      const second = await uploadParts(started.upload_name, started.upload_id, theirs);
      await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, second);
      const digest = sha256(Buffer.concat(ours));
      const error = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: 5 * MiB + 4, parts: first }).catch((err: unknown) => err);
      expect((error as HoldClientError).code).to.equal('UPLOAD_STATE_CONFLICT');
      expect(await hold.client.stat(DIDS.owner, digest).catch((err: unknown) => (err as HoldClientError).code)).to.equal('BLOB_UNKNOWN');
      const again = await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, first).catch((err: unknown) => err);
      expect((again as HoldClientError).code).to.equal('UPLOAD_STATE_CONFLICT');
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
    });

    it('/move with parts that disagree with the record or with size changes nothing, and the right parts then publish', async function () {
      const parts = [randomBlob(5 * MiB), randomBlob(10)];
      const blob = Buffer.concat(parts);
      const digest = sha256(blob);
      const started = await hold.client.startMultipart(DIDS.owner);
      const done = await uploadParts(started.upload_name, started.upload_id, parts);
      await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, parts: done.slice(0, 1) });
      const claimsBefore = await hold.inspect.keys('holdfast/claims/');
      const misrecorded = done.map((part, index) => (index === 0 ? { ...part, size: part.size + 1 } : part));
      const wrongPart = await hold.client.move(DIDS.owner, started.upload_name, digest, { parts: misrecorded }).catch((err: unknown) => err);
      expect((wrongPart as HoldClientError).code).to.equal('INVALID_PART');
      const wrongSize = await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length + 1, parts: done }).catch((err: unknown) => err);
      expect((wrongSize as HoldClientError).code).to.equal('SIZE_INVALID');
      expect((wrongSize as HoldClientError).status).to.equal(400);
      expect(await hold.inspect.keys('holdfast/claims/')).to.deep.equal(claimsBefore);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(1);
      expect(await hold.client.move(DIDS.owner, started.upload_name, digest, { size: blob.length, parts: done })).to.deep.equal({ digest, size: blob.length, existed: false });
    });

    it('completes a zero-byte upload sent as one empty part', async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const done = await uploadParts(started.upload_name, started.upload_id, [Buffer.alloc(0)]);
      const completed = await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, done);
      expect(completed.size).to.equal(0);
      const digest = sha256(Buffer.alloc(0));
      await hold.client.move(DIDS.owner, started.upload_name, digest, { size: 0 });
      expect(await hold.client.stat(DIDS.owner, digest)).to.deep.equal({ digest, size: 0 });
    });

    it('refuses a non-final part under 5 MiB with PART_TOO_SMALL and keeps the upload usable', async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const done = await uploadParts(started.upload_name, started.upload_id, [randomBlob(MiB), randomBlob(10)]);
      const error = await hold.client
        .completeMultipart(DIDS.owner, started.upload_name, started.upload_id, done.map(({ part_number, etag }) => ({ part_number, etag })))
        .catch((err: unknown) => err);
      expect(error).to.be.instanceOf(HoldClientError);
      expect((error as HoldClientError).code).to.equal('PART_TOO_SMALL');
      expect((error as HoldClientError).status).to.equal(400);
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
    });

    it('abort leaves no multipart upload and no objects', async function () {
      const before = await hold.inspect.keys();
      const started = await hold.client.startMultipart(DIDS.owner);
      await uploadParts(started.upload_name, started.upload_id, [randomBlob(5 * MiB)]);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(1);
      expect(await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id)).to.deep.equal({ aborted: true });
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
      expect(await hold.inspect.keys()).to.deep.equal(before);
      const again = await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id).catch((err: unknown) => err);
      expect((again as HoldClientError).code).to.equal('UPLOAD_UNKNOWN');
    });

    it('stages tail segments, records progress, and reports it back', async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const first = randomBlob(22);
      const second = randomBlob(20);
      const url1 = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
      expect((await putToUrl(url1.url, first)).status).to.equal(200);
      let view = await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, {
        base_size: 0,
        staged: [{ offset: 0, size: 22, segment_id: url1.segment_id as string }],
        client_state: { part_size: 5 * MiB },
      });
      expect(view.size).to.equal(22);
      const url2 = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 22 });
      expect((await putToUrl(url2.url, second)).status).to.equal(200);
      view = await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, {
        base_size: 22,
        staged: [
          { offset: 0, size: 22, segment_id: url1.segment_id as string },
          { offset: 22, size: 20, segment_id: url2.segment_id as string },
        ],
      });
      expect(view.size).to.equal(42);
      const status = await hold.client.uploadStatus(DIDS.owner, started.upload_name, started.upload_id);
      expect(status.staged).to.deep.equal([
        { offset: 0, size: 22, segment_id: url1.segment_id },
        { offset: 22, size: 20, segment_id: url2.segment_id },
      ]);
      expect(url1.segment_id, 'every staging URL writes an object of its own').to.match(/^[0-9a-f]{32}$/).and.not.equal(url2.segment_id);
      expect(status.client_state).to.deep.equal({ part_size: 5 * MiB });
      const segment = await hold.client.getPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 22 });
      expect((await getFromUrl(segment.url)).body.equals(second)).to.equal(true);

      const stale = await hold.client
        .uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 22, staged: [] })
        .catch((err: unknown) => err);
      expect((stale as HoldClientError).code).to.equal('UPLOAD_STATE_CONFLICT');

      // Fold the tail into part 1 (as the last part) and finish.
      const whole = Buffer.concat([first, second]);
      const done = await uploadParts(started.upload_name, started.upload_id, [whole]);
      await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, done);
      await hold.client.move(DIDS.owner, started.upload_name, sha256(whole), { size: 42 });
      const keys = await hold.inspect.keys('holdfast/uploads/');
      expect(keys, 'staged segments and the session are removed by move').to.deep.equal([]);
    });

    it('a registry from before segment ids reports a staged segment by offset alone: the one key its URL wrote is recorded; two are refused', async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const tail = randomBlob(30);
      const url = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
      await putToUrl(url.url, tail);
      const view = await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, staged: [{ offset: 0, size: 30 }] });
      expect(view.staged).to.deep.equal([{ offset: 0, size: 30, segment_id: url.segment_id }]);
      // Two writers staged at the next offset: which one the record means cannot be told.
      for (const bytes of [randomBlob(10), randomBlob(10)]) {
        const next = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 30 });
        await putToUrl(next.url, bytes);
      }
      const ambiguous = await hold.client
        .uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 30, staged: [{ offset: 0, size: 30 }, { offset: 30, size: 10 }] })
        .catch((err: unknown) => err);
      expect((ambiguous as HoldClientError).code).to.equal('INVALID_REQUEST');
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
    });

    it('records parts and drops staged segments they replace', async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const tail = randomBlob(1000);
      const url = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
      await putToUrl(url.url, tail);
      await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, staged: [{ offset: 0, size: 1000, segment_id: url.segment_id as string }] });
      const [part] = await uploadParts(started.upload_name, started.upload_id, [randomBlob(5 * MiB)]);
      const view = await hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, {
        base_size: 1000,
        parts: [part as never],
        staged: [],
      });
      expect(view.parts).to.have.length(1);
      expect(view.size).to.equal(5 * MiB);
      const staged = (await hold.inspect.keys('holdfast/uploads/')).filter((key) => key.includes('/staged/'));
      expect(staged).to.deep.equal([]);
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
    });

    it('single-object PUT then move; a second move of the same digest skips the copy', async function () {
      const blob = randomBlob(4096);
      const digest = sha256(blob);
      for (const expectedExisted of [false, true]) {
        const presigned = await hold.client.putPresignedUrl(DIDS.owner, digest);
        expect(presigned.upload_name).to.match(/^uploads\/temp-/);
        expect((await putToUrl(presigned.url, blob)).status).to.equal(200);
        const moved = await hold.client.move(DIDS.owner, presigned.upload_name as string, digest);
        expect(moved.existed).to.equal(expectedExisted);
      }
      expect((await hold.inspect.keys('holdfast/uploads/')).length).to.equal(0);
    });

    it('refuses a move whose size does not match and changes nothing', async function () {
      const blob = randomBlob(100);
      const digest = sha256(blob);
      const presigned = await hold.client.putPresignedUrl(DIDS.owner, digest);
      await putToUrl(presigned.url, blob);
      const error = await hold.client.move(DIDS.owner, presigned.upload_name as string, digest, { size: 99 }).catch((err: unknown) => err);
      expect((error as HoldClientError).code).to.equal('SIZE_INVALID');
      const missing = await hold.client.stat(DIDS.owner, digest).catch((err: unknown) => err);
      expect((missing as HoldClientError).code).to.equal('BLOB_UNKNOWN');
    });

    it('serves HEAD and ranged GET through presigned URLs, and deletes', async function () {
      const blob = randomBlob(1000);
      const digest = sha256(blob);
      const presigned = await hold.client.putPresignedUrl(DIDS.owner, digest);
      await putToUrl(presigned.url, blob);
      await hold.client.move(DIDS.owner, presigned.upload_name as string, digest);
      const head = await hold.client.getPresignedUrl(DIDS.owner, digest, { method: 'HEAD' });
      expect(head.method).to.equal('HEAD');
      const { request } = await import('undici');
      const viaEndpoint = await hold.client.call<{ url: string; method: string }>('/head-presigned-url', DIDS.owner, { digest });
      expect(viaEndpoint.method).to.equal('HEAD');
      const headResponse = await request(viaEndpoint.url, { method: 'HEAD' });
      await headResponse.body.dump();
      expect(headResponse.statusCode).to.equal(200);
      expect(headResponse.headers['content-length']).to.equal('1000');
      const get = await hold.client.getPresignedUrl(DIDS.owner, digest);
      const ranged = await getFromUrl(get.url, { range: 'bytes=10-19' });
      expect(ranged.status).to.equal(206);
      expect(ranged.body.equals(blob.subarray(10, 20))).to.equal(true);
      expect(await hold.client.delete(DIDS.owner, digest)).to.deep.equal({ deleted: true });
      expect(await hold.client.delete(DIDS.owner, digest)).to.deep.equal({ deleted: false });
    });
  });
}

describe('hold claims: a blob shared by two registries', function () {
  for (const backend of BACKENDS) {
    it(`is deleted only when the last registry releases it (${backend})`, async function () {
      const hold = await startTestHold(backend, { extraIssuers: ['did:web:registry-two.test'] });
      const { HoldClient } = await import('../../src/driver/hold-client.ts');
      const { ServiceTokenSigner } = await import('../../src/core/service-token.ts');
      const second = new HoldClient({
        url: hold.url,
        audience: hold.hold.config.identity,
        signer: new ServiceTokenSigner({ issuer: 'did:web:registry-two.test', privateKey: hold.keys.privateKey }),
      });
      try {
        const digest = await publishBlob(hold, randomBlob(1000));
        expect(await second.claim(DIDS.owner, digest)).to.deep.equal({ digest, size: 1000 });
        expect(await hold.client.release(DIDS.owner, digest)).to.deep.equal({ deleted: false, remaining_claims: 1 });
        expect((await hold.client.stat(DIDS.owner, digest)).size, 'registry two still uses it').to.equal(1000);
        expect(await second.release(DIDS.owner, digest)).to.deep.equal({ deleted: true, remaining_claims: 0 });
        const gone = await hold.client.stat(DIDS.owner, digest).catch((err: unknown) => err);
        expect((gone as HoldClientError).code).to.equal('BLOB_UNKNOWN');
        const missing = await second.claim(DIDS.owner, digest).catch((err: unknown) => err);
        expect((missing as HoldClientError).code, 'no claim on a blob that is not there').to.equal('BLOB_UNKNOWN');
      } finally {
        await second.close();
        await hold.close();
      }
    });
  }
});

describe('hold upload records under concurrent writers', function () {
  for (const backend of BACKENDS) {
    it(`refuses the second of two progress updates from the same base (${backend})`, async function () {
      const hold = await startTestHold(backend);
      try {
        const started = await hold.client.startMultipart(DIDS.owner);
        const url = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
        await putToUrl(url.url, randomBlob(10));
        const updates = await Promise.allSettled(
          [1, 2].map(() =>
            hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, staged: [{ offset: 0, size: 10, segment_id: url.segment_id as string }] }),
          ),
        );
        const refused = updates.filter((result) => result.status === 'rejected');
        expect(refused.length, 'exactly one of two racing updates wins').to.equal(1);
        expect(((refused[0] as PromiseRejectedResult).reason as HoldClientError).code).to.equal('UPLOAD_STATE_CONFLICT');
        await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
      } finally {
        await hold.close();
      }
    });
  }
});

describe('hold processes sharing one bucket: a remembered upload record', function () {
  it('that another hold process has moved on is read again, and the progress lands on the current record', async function () {
    const first = await startTestHold('s3');
    const second = await startTestHold('s3', { s3: { prefix: first.prefix.slice(0, -1) } });
    try {
      const upload = await first.client.startMultipart(DIDS.owner);
      const record = async (via: TestHold, partNumber: number, baseSize: number) => {
        const bytes = randomBlob(5 * MiB);
        const url = await via.client.partPresignedUrl(DIDS.owner, upload.upload_name, upload.upload_id, partNumber);
        const { etag } = await putToUrl(url.url, bytes);
        return via.client.uploadProgress(DIDS.owner, upload.upload_name, upload.upload_id, {
          base_size: baseSize,
          parts: [{ part_number: partNumber, etag: etag as string, size: bytes.length }],
        });
      };
      await record(first, 1, 0);
      await record(second, 2, 5 * MiB);
      // The first process last saw one part; its copy is stale.
      const view = await record(first, 3, 10 * MiB);
      expect(view.size).to.equal(15 * MiB);
      expect(view.parts.map((part) => part.part_number)).to.deep.equal([1, 2, 3]);
      const stale = await first.client.uploadProgress(DIDS.owner, upload.upload_name, upload.upload_id, { base_size: 10 * MiB }).catch((err: unknown) => err);
      expect((stale as HoldClientError).code, 'a writer that is really behind is still refused').to.equal('UPLOAD_STATE_CONFLICT');
      await first.client.abortMultipart(DIDS.owner, upload.upload_name, upload.upload_id);
    } finally {
      await second.close();
      await first.close();
    }
  });
});
