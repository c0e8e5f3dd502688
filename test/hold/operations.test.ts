import { expect } from 'chai';
import { INSTANCE_NAME } from '../../src/core/instance.ts';
import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BACKENDS, DIDS, publishBlob, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { METRICS_HEADERS } from '../support/hold-metrics.ts';
import { MiB, getFromUrl, putToUrl, randomBlob, sha256 } from '../support/bytes.ts';
import { HoldClientError } from '../../src/driver/hold-client.ts';
import { sharedMinio } from '../support/global-fixtures.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of BACKENDS) {
  describe(`hold operations (${backend})`, function () {
    it('refuses presigned URLs after they expire', async function () {
      const hold = await startTestHold(backend, { config: { presignTtlSeconds: 1 } });
      try {
        const blob = randomBlob(10);
        const put = await hold.client.putPresignedUrl(DIDS.owner, sha256(blob));
        const started = await hold.client.startMultipart(DIDS.owner);
        const part = await hold.client.partPresignedUrl(DIDS.owner, started.upload_name, started.upload_id, 1);
        await sleep(2200);
        const lateObject = await putToUrl(put.url, blob);
        const latePart = await putToUrl(part.url, blob);
        if (backend === 's3' && (await sharedMinio()).kind !== 'minio') {
          // Expiry is the server's to enforce: moto never checks it and versitygw is not reliable
          // at a one-second lifetime. The URLs must still carry it.
          for (const url of [put.url, part.url]) expect(url).to.match(/X-Amz-Expires=1(&|$)/);
        } else {
          expect(lateObject.status).to.equal(403);
          expect(latePart.status).to.equal(403);
        }
        // Both uploads are still pending (a single PUT is a one-part multipart upload), and nothing was written.
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(2);
        await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
      } finally {
        await hold.close();
      }
    });

    it('the janitor aborts uploads idle past the TTL and keeps fresh ones', async function () {
      let now = new Date();
      const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now });
      try {
        const stale = await hold.client.startMultipart(DIDS.owner);
        const part = await hold.client.partPresignedUrl(DIDS.owner, stale.upload_name, stale.upload_id, 1);
        await putToUrl(part.url, randomBlob(5 * MiB));
        const staged = await hold.client.putPresignedUrl(DIDS.owner, stale.upload_name, { uploadId: stale.upload_id, offset: 0 });
        await putToUrl(staged.url, randomBlob(3));
        now = new Date(now.getTime() + 2 * 3600 * 1000);
        const fresh = await hold.client.startMultipart(DIDS.owner);
        expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 1, skipped: 0, orphans: 0 });
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(1);
        const keys = await hold.inspect.keys();
        expect(keys).to.deep.equal([`holdfast/uploads/${fresh.upload_name.slice('uploads/temp-'.length)}/session.json`]);
        const gone = await hold.client.uploadStatus(DIDS.owner, stale.upload_name, stale.upload_id).catch((err: unknown) => err);
        expect((gone as HoldClientError).code).to.equal('UPLOAD_UNKNOWN');
        await hold.client.abortMultipart(DIDS.owner, fresh.upload_name, fresh.upload_id);
      } finally {
        await hold.close();
      }
    });

    it('the janitor aborts the multipart upload of a start that died between CreateMultipartUpload and its session', async function () {
      let now = new Date();
      let reached = 0;
      let resume: () => void = () => {};
      const stalled = new Promise<void>((resolve) => (resume = resolve));
      // A start frozen just after S3 created its upload stands for a hold SIGKILLed there: it records nothing more.
      const onStep = async (step: string) => {
        if (step !== 'start:upload-created') return;
        reached++;
        await stalled;
      };
      const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now, onStep });
      try {
        const starts = [hold.client.startMultipart(DIDS.owner), hold.client.putPresignedUrl(DIDS.owner, sha256(randomBlob(10)))].map((call) =>
          call.catch((err: unknown) => err),
        );
        while (reached < 2) await sleep(10);
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(2);
        expect(await hold.hold.runJanitor(), 'within the TTL').to.deep.equal({ abandoned: 0, purged: 0, skipped: 0, orphans: 0 });
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(2);
        now = new Date(now.getTime() + 2 * 3600 * 1000);
        expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 2, skipped: 0, orphans: 0 });
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
        expect(await hold.inspect.keys()).to.deep.equal([]);
        // Should the frozen starts wake after all, what they record is collected the same way.
        resume();
        await Promise.all(starts);
        now = new Date(now.getTime() + 2 * 3600 * 1000);
        await hold.hold.runJanitor();
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
        expect(await hold.inspect.keys()).to.deep.equal([]);
      } finally {
        resume();
        await hold.close();
      }
    });

    it('the janitor leaves an upload written to after it decided the upload was idle (another hold took the write)', async function () {
      let now = new Date();
      let paused: () => void = () => {};
      let resume: () => void = () => {};
      const reached = new Promise<void>((resolve) => (paused = resolve));
      const released = new Promise<void>((resolve) => (resume = resolve));
      const onStep = async (step: string) => {
        if (step !== 'purge:session-read') return;
        paused();
        await released;
      };
      const hold = await startTestHold(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now, onStep });
      try {
        const upload = await hold.client.startMultipart(DIDS.owner);
        const part = await hold.client.partPresignedUrl(DIDS.owner, upload.upload_name, upload.upload_id, 1);
        const bytes = randomBlob(5 * MiB);
        const { etag } = await putToUrl(part.url, bytes);
        now = new Date(now.getTime() + 2 * 3600 * 1000);
        const janitor = hold.hold.runJanitor();
        await reached;
        // The writer comes back between the janitor's read and its decision.
        await hold.client.uploadProgress(DIDS.owner, upload.upload_name, upload.upload_id, { base_size: 0, parts: [{ part_number: 1, etag: etag as string, size: bytes.length }] });
        resume();
        expect(await janitor).to.deep.equal({ abandoned: 0, purged: 0, skipped: 0, orphans: 0 });
        const status = await hold.client.uploadStatus(DIDS.owner, upload.upload_name, upload.upload_id);
        expect(status.size).to.equal(5 * MiB);
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(1);
        await hold.client.abortMultipart(DIDS.owner, upload.upload_name, upload.upload_id);
      } finally {
        resume();
        await hold.close();
      }
    });

    it('serves /metrics only to a scraper with the secret: anonymous callers get 401, and with neither a secret nor metrics.listen, 404', async function () {
      const hold = await startTestHold(backend);
      const closed = await startTestHold(backend, { config: { metrics: {} } });
      try {
        const anonymous = await request(`${hold.url}/metrics`);
        expect(anonymous.statusCode).to.equal(401);
        expect(await anonymous.body.text()).not.to.include('holdfast_');
        const wrong = await request(`${hold.url}/metrics`, { headers: { authorization: 'Bearer test-metrics-secret-0123456780' } });
        expect(wrong.statusCode).to.equal(401);
        await wrong.body.dump();
        const none = await request(`${closed.url}/metrics`);
        expect(none.statusCode).to.equal(404);
        expect(await none.body.text()).not.to.include('holdfast_');
      } finally {
        await closed.close();
        await hold.close();
      }
    });

    it('serves /metrics on metrics.listen alone when it is set, and not on the main port', async function () {
      const hold = await startTestHold(backend, { config: { metrics: { listen: { host: '127.0.0.1', port: 0 } } } });
      try {
        const main = await request(`${hold.url}/metrics`, { headers: METRICS_HEADERS });
        expect(main.statusCode).to.equal(404);
        await main.body.dump();
        const scraped = await request(`${hold.hold.metricsAddress as string}/metrics`);
        expect(scraped.statusCode).to.equal(200);
        expect(await scraped.body.text()).to.include('holdfast_hold_requests_total');
        const other = await request(`${hold.hold.metricsAddress as string}/v2/`);
        expect(other.statusCode).to.equal(404);
        await other.body.dump();
      } finally {
        await hold.close();
      }
    });

    it('serves /healthz and Prometheus /metrics with request and storage counters', async function () {
      const hold = await startTestHold(backend);
      try {
        await hold.client.startMultipart(DIDS.owner);
        const health = await request(`${hold.url}/healthz`);
        expect(await health.body.json()).to.deep.equal({ status: 'ok', service: 'hold', instance: INSTANCE_NAME });
        const metrics = await (await request(`${hold.url}/metrics`, { headers: METRICS_HEADERS })).body.text();
        expect(metrics).to.match(/holdfast_hold_requests_total\{endpoint="\/start-multipart",method="POST",status="200"\} 1/);
        if (backend === 's3') expect(metrics).to.match(/holdfast_hold_storage_call_seconds_count\{operation="CreateMultipartUpload",outcome="ok"\} 1/);
      } finally {
        await hold.close();
      }
    });

    it('answers 416 with Content-Range for an unsatisfiable range', async function () {
      const hold = await startTestHold(backend);
      try {
        const digest = await publishBlob(hold, randomBlob(100));
        const get = await hold.client.getPresignedUrl(DIDS.owner, digest);
        const response = await getFromUrl(get.url, { range: 'bytes=500-600' });
        expect(response.status).to.equal(416);
      } finally {
        await hold.close();
      }
    });
  });
}

describe('hold move strategies (s3)', function () {
  it('moves objects above the copy threshold with UploadPartCopy, byte-exact', async function () {
    const hold = await startTestHold('s3', { s3: { publish: 'copy', copyPartThreshold: 5 * MiB, copyPartSize: 5 * MiB, copyConcurrency: 2 } });
    try {
      const blob = randomBlob(11 * MiB + 3);
      const digest = sha256(blob);
      const put = await hold.client.putPresignedUrl(DIDS.owner, digest);
      expect((await putToUrl(put.url, blob)).status).to.equal(200);
      await hold.client.move(DIDS.owner, put.upload_name as string, digest);
      const get = await hold.client.getPresignedUrl(DIDS.owner, digest);
      expect(sha256((await getFromUrl(get.url)).body)).to.equal(digest);
      const metrics = await (await request(`${hold.url}/metrics`, { headers: METRICS_HEADERS })).body.text();
      expect(metrics).to.match(/holdfast_hold_storage_call_seconds_count\{operation="UploadPartCopy",outcome="ok"\} 3/);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
    } finally {
      await hold.close();
    }
  });

  /** A multipart upload of `blob` in two parts, completed but not moved. */
  async function completedUpload(hold: TestHold, blob: Buffer) {
    const started = await hold.client.startMultipart(DIDS.owner);
    const parts = [];
    for (const [index, bytes] of [blob.subarray(0, 6 * MiB), blob.subarray(6 * MiB)].entries()) {
      const url = await hold.client.partPresignedUrl(DIDS.owner, started.upload_name, started.upload_id, index + 1);
      const response = await putToUrl(url.url, bytes);
      parts.push({ part_number: index + 1, etag: response.etag as string, size: bytes.length });
    }
    await hold.client.completeMultipart(DIDS.owner, started.upload_name, started.upload_id, parts);
    const uuid = started.upload_name.slice('uploads/temp-'.length);
    const session = `holdfast/uploads/${uuid}/session.json`;
    const record = JSON.parse(((await hold.inspect.read(session)) as Buffer).toString('utf8')) as Record<string, unknown>;
    return { ...started, object: `holdfast/objects/${uuid}`, session, record };
  }

  /** Puts the upload's session record back as a /move that stopped part-way would leave it. */
  async function leaveSessionBehind(hold: TestHold, upload: { session: string; record: Record<string, unknown> }, publishingDigest: string) {
    const minio = await sharedMinio();
    const body = JSON.stringify({ ...upload.record, publishing_digest: publishingDigest });
    await minio.client.send(new PutObjectCommand({ Bucket: minio.bucket, Key: `${hold.prefix}${upload.session}`, Body: body }));
  }

  it('publishes by reference: no bytes copied, reads and stat see the blob, delete removes the reference and then the bytes', async function () {
    const hold = await startTestHold('s3');
    try {
      const blob = randomBlob(11 * MiB + 3);
      const digest = sha256(blob);
      const upload = await completedUpload(hold, blob);
      expect(await hold.client.move(DIDS.owner, upload.upload_name, digest, { size: blob.length })).to.deep.include({ existed: false, size: blob.length });
      const metrics = await (await request(`${hold.url}/metrics`, { headers: METRICS_HEADERS })).body.text();
      expect(metrics).not.to.match(/operation="(CopyObject|UploadPartCopy)"/);
      expect((await hold.client.stat(DIDS.owner, digest)).size).to.equal(blob.length);
      expect((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body.equals(blob)).to.equal(true);
      expect(await hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      expect(await hold.inspect.keys('holdfast/objects/')).to.deep.equal([upload.object]);

      // A second upload of the same bytes finds the blob and leaves nothing of its own behind.
      const again = await completedUpload(hold, blob);
      expect(await hold.client.move(DIDS.owner, again.upload_name, digest)).to.deep.include({ existed: true, size: blob.length });
      expect(await hold.inspect.keys('holdfast/objects/')).to.deep.equal([upload.object]);

      expect(await hold.client.delete(DIDS.owner, digest)).to.deep.equal({ deleted: true });
      expect(await hold.inspect.keys('docker/')).to.deep.equal([]);
      expect(await hold.inspect.keys('holdfast/objects/')).to.deep.equal([]);
      expect((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).status).to.equal(404);
    } finally {
      await hold.close();
    }
  });

  it('a janitor that finds the session of an interrupted publish keeps the bytes only if the reference was written', async function () {
    let now = new Date();
    const hold = await startTestHold('s3', { config: { uploadTtlSeconds: 60 }, now: () => now });
    try {
      const blob = randomBlob(6 * MiB + 1);
      const digest = sha256(blob);
      const published = await completedUpload(hold, blob);
      await hold.client.move(DIDS.owner, published.upload_name, digest);
      // As if /move had stopped after writing the reference, before deleting the session.
      await leaveSessionBehind(hold, published, digest);
      // And one that stopped before writing its reference.
      await leaveSessionBehind(hold, await completedUpload(hold, randomBlob(6 * MiB + 2)), sha256(randomBlob(5)));

      now = new Date(now.getTime() + 3600 * 1000);
      expect(await hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 2, skipped: 0, orphans: 0 });
      expect(await hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      expect(await hold.inspect.keys('holdfast/objects/')).to.deep.equal([published.object]);
      expect((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body.equals(blob)).to.equal(true);
    } finally {
      await hold.close();
    }
  });

  it('a retried /move whose first attempt wrote the reference keeps the bytes', async function () {
    const hold = await startTestHold('s3');
    try {
      const blob = randomBlob(6 * MiB + 5);
      const digest = sha256(blob);
      const upload = await completedUpload(hold, blob);
      await hold.client.move(DIDS.owner, upload.upload_name, digest);
      // As if the first attempt stopped after its reference, and the caller retried.
      await leaveSessionBehind(hold, upload, digest);
      expect(await hold.client.move(DIDS.owner, upload.upload_name, digest)).to.deep.include({ size: blob.length });
      expect(await hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      expect(await hold.inspect.keys('holdfast/objects/')).to.deep.equal([upload.object]);
      expect((await getFromUrl((await hold.client.getPresignedUrl(DIDS.owner, digest)).url)).body.equals(blob)).to.equal(true);
    } finally {
      await hold.close();
    }
  });

  it('gives a clear 501 on a provider without UploadPartCopy and leaves the upload in place', async function () {
    const hold = await startTestHold('s3', { s3: { provider: 'storj', copyPartThreshold: 5 * MiB } });
    try {
      const blob = randomBlob(6 * MiB);
      const digest = sha256(blob);
      const put = await hold.client.putPresignedUrl(DIDS.owner, digest);
      await putToUrl(put.url, blob);
      const error = (await hold.client.move(DIDS.owner, put.upload_name as string, digest).catch((err: unknown) => err)) as HoldClientError;
      expect(error.status).to.equal(501);
      expect(error.code).to.equal('UNSUPPORTED');
      expect(error.message).to.match(/storj has no UploadPartCopy/);
      const stat = await hold.client.stat(DIDS.owner, digest).catch((err: unknown) => err);
      expect((stat as HoldClientError).code).to.equal('BLOB_UNKNOWN');
    } finally {
      await hold.close();
    }
  });

  it('never sends SDK checksum parameters in presigned URLs', async function () {
    const hold = await startTestHold('s3');
    try {
      const started = await hold.client.startMultipart(DIDS.owner);
      const part = await hold.client.partPresignedUrl(DIDS.owner, started.upload_name, started.upload_id, 1);
      const put = await hold.client.putPresignedUrl(DIDS.owner, sha256(Buffer.from('x')));
      for (const url of [part.url, put.url]) expect(url.toLowerCase()).to.not.match(/x-amz-checksum|x-amz-sdk-checksum/);
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
    } finally {
      await hold.close();
    }
  });
});

describe('hold logging', function () {
  it('never logs presigned query strings, tokens or credentials', async function () {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const hold = await startTestHold('fs', { logger: pino({ level: 'trace' }, sink) });
    try {
      const blob = randomBlob(10);
      const put = await hold.client.putPresignedUrl(DIDS.owner, sha256(blob));
      await putToUrl(put.url, blob);
      await putToUrl(put.url.replace(/Signature=[a-f0-9]+/, `Signature=${'0'.repeat(64)}`), blob);
    } finally {
      await hold.close();
    }
    const logged = lines.join('');
    expect(logged).to.include('/_fs/parts/');
    expect(logged).to.not.match(/X-Holdfast-Signature|X-Holdfast-Expires/);
    expect(logged).to.not.match(/Bearer|eyJ/);
  });
});

describe('conditional session writes', function () {
  for (const backend of BACKENDS) {
    it(`a write conditioned on a stale ETag fails with PRECONDITION_FAILED (${backend})`, async function () {
      const hold = await startTestHold(backend);
      try {
        const store = hold.hold.backend;
        const key = `${hold.prefix}holdfast/uploads/00000000-0000-4000-8000-000000000000/session.json`;
        await store.putSmall(key, Buffer.from('{"v":1}'));
        const first = await store.getSmall(key);
        await store.putSmall(key, Buffer.from('{"v":2}'), { ifMatch: first?.etag });
        const error = await store.putSmall(key, Buffer.from('{"v":3}'), { ifMatch: first?.etag }).catch((err: unknown) => err);
        expect((error as { code?: string }).code).to.equal('PRECONDITION_FAILED');
        expect(Buffer.from((await store.getSmall(key))?.body ?? []).toString()).to.equal('{"v":2}');
        await store.delete([key]);
      } finally {
        await hold.close();
      }
    });
  }
});
