import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { expectStored as expectStoredExactly, readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { DriverError, type BlobStore, type BlobWriter } from '../../src/driver/index.ts';

const SIZES: [string, number][] = [
  ['0 bytes', 0],
  ['1 byte', 1],
  ['5 MiB - 1', 5 * MiB - 1],
  ['5 MiB', 5 * MiB],
  ['5 MiB + 1', 5 * MiB + 1],
  ['3 parts + a tail', 3 * 5 * MiB + 7],
  ['100 MiB', 100 * MiB],
];

for (const backend of BACKENDS) {
  describe(`storage driver (${backend})`, function () {
    let fixture: DriverFixture;
    let store: BlobStore;

    before(async function () {
      fixture = await startDriverFixture(backend);
      store = fixture.driver().blobStore(DIDS.owner);
    });
    after(async function () {
      await fixture?.close();
    });

    const expectStored = (blob: Buffer) => expectStoredExactly(fixture, store, blob, { noTempObjects: true });

    for (const [label, size] of SIZES) {
      it(`writes ${label} as one stream, byte-exact`, async function () {
        const blob = randomBlob(size);
        const writer = await store.create();
        await writer.readFrom(chunked(blob, 256 * 1024));
        expect(writer.size).to.equal(size);
        const descriptor = await writer.commit({ digest: sha256(blob), size });
        expect(descriptor).to.deep.equal({ digest: sha256(blob), size, existed: false });
        await expectStored(blob);
      });
    }

    it('sends a part while a request that will fill it still arrives, and keeps a request that ends short as the tail', async function () {
      const part = 5 * MiB;
      const blob = randomBlob(3 * part + 22);
      const pieces = function* (bytes: Buffer) {
        for (let offset = 0; offset < bytes.length; offset += 64 * 1024) yield bytes.subarray(offset, Math.min(offset + 64 * 1024, bytes.length));
      };
      const before = fixture.requests.length;
      const writer = await store.create();
      // A first request that fills exactly one part, its length declared.
      await writer.readFrom(pieces(blob.subarray(0, part)), { length: part });
      await writer.close();
      const streamed = () => fixture.requests.slice(before).filter((event) => event.streamed && event.status === 200).length;
      expect(streamed(), 'the first part went out while it arrived').to.equal(1);
      // A request that declares a whole part and ends 1 MiB short (its client went away).
      let resumed = await store.resume(writer.id);
      await resumed.readFrom(pieces(blob.subarray(part, 2 * part - MiB)), { length: part });
      await resumed.close();
      expect(streamed()).to.equal(1);
      resumed = await store.resume(writer.id);
      expect(resumed.size, 'what arrived is durable').to.equal(2 * part - MiB);
      await resumed.readFrom(pieces(blob.subarray(2 * part - MiB)), { length: blob.length - (2 * part - MiB) });
      await resumed.close();
      expect(streamed(), 'the next part, which this request filled').to.be.greaterThanOrEqual(2);
      await (await store.resume(writer.id)).commit({ digest: sha256(blob), size: blob.length });
      await expectStored(blob);
    });

    it('writes 22 bytes, closes, resumes, writes 20 bytes and commits', async function () {
      const blob = randomBlob(42);
      const first = await store.create();
      await first.write(blob.subarray(0, 22));
      await first.close();
      expect(first.size).to.equal(22);
      const second = await store.resume(first.id);
      expect(second.size).to.equal(22);
      await second.write(blob.subarray(22));
      await second.close();
      await (await store.resume(first.id)).commit({ digest: sha256(blob) });
      await expectStored(blob);
    });

    it('takes 1,000 writes of 64 KiB across many close/resume cycles', async function () {
      const blob = randomBlob(1000 * 64 * 1024);
      let writer: BlobWriter = await store.create();
      const id = writer.id;
      for (let index = 0; index < 1000; index++) {
        await writer.write(blob.subarray(index * 65536, (index + 1) * 65536));
        if (index % 37 === 36) {
          await writer.close();
          writer = await store.resume(id);
          expect(writer.size).to.equal((index + 1) * 65536);
        }
      }
      await writer.close();
      await (await store.resume(id)).commit({ digest: sha256(blob), size: blob.length });
      await expectStored(blob);
    });

    it('resumes in a fresh driver (another process) and verifies by reading back', async function () {
      const blob = randomBlob(12 * MiB + 5);
      const writer = await store.create();
      await writer.write(blob.subarray(0, 7 * MiB));
      await writer.close();
      const other = fixture.driver().blobStore(DIDS.owner);
      const resumed = await other.resume(writer.id);
      expect(resumed.size).to.equal(7 * MiB);
      await resumed.write(blob.subarray(7 * MiB));
      await resumed.commit({ digest: sha256(blob) });
      await expectStored(blob);
    });

    it('lets two drivers alternate on one upload', async function () {
      const blob = randomBlob(23 * MiB + 3);
      const stores = [store, fixture.driver().blobStore(DIDS.owner)];
      const id = (await store.create()).id;
      const chunk = 3 * MiB + 1;
      for (let offset = 0, turn = 0; offset < blob.length; offset += chunk, turn++) {
        const writer = await (stores[turn % 2] as BlobStore).resume(id);
        expect(writer.size).to.equal(offset);
        await writer.write(blob.subarray(offset, offset + chunk));
        await writer.close();
      }
      await (await (stores[1] as BlobStore).resume(id)).commit({ digest: sha256(blob) });
      await expectStored(blob);
    });

    it('a digest mismatch leaves nothing at the digest and no multipart upload', async function () {
      const blob = randomBlob(6 * MiB);
      const wrong = sha256(Buffer.from('something else'));
      const writer = await store.create();
      await writer.write(blob);
      const error = await writer.commit({ digest: wrong }).catch((err: unknown) => err);
      expect(error).to.be.instanceOf(DriverError);
      expect((error as DriverError).code).to.equal('DIGEST_INVALID');
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
      const missing = await store.stat(wrong).catch((err: unknown) => err);
      expect((missing as DriverError).code).to.equal('BLOB_UNKNOWN');
      expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      const gone = await store.resume(writer.id).catch((err: unknown) => err);
      expect((gone as DriverError).code).to.equal('BLOB_UPLOAD_UNKNOWN');
    });

    it('a digest mismatch after a cross-process resume is caught by the read-back', async function () {
      const blob = randomBlob(MiB);
      const writer = await store.create();
      await writer.write(blob);
      await writer.close();
      const resumed = await fixture.driver().blobStore(DIDS.owner).resume(writer.id);
      const error = await resumed.commit({ digest: sha256(Buffer.from('nope')) }).catch((err: unknown) => err);
      expect((error as DriverError).code).to.equal('DIGEST_INVALID');
      expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
    });

    it('a size mismatch is SIZE_INVALID and removes the upload', async function () {
      const writer = await store.create();
      await writer.write(randomBlob(100));
      const error = await writer.commit({ digest: sha256(Buffer.alloc(100)), size: 101 }).catch((err: unknown) => err);
      expect((error as DriverError).code).to.equal('SIZE_INVALID');
      expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
    });

    it('cancel leaves no multipart upload and no staged objects, and is safe twice', async function () {
      const writer = await store.create();
      await writer.write(randomBlob(11 * MiB));
      await writer.close();
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(1);
      await writer.cancel();
      await writer.cancel();
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
      expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
      const gone = await store.resume(writer.id).catch((err: unknown) => err);
      expect((gone as DriverError).code).to.equal('BLOB_UPLOAD_UNKNOWN');
    });

    it('reads ranges and redirects', async function () {
      const blob = randomBlob(1000);
      const writer = await store.create();
      await writer.write(blob);
      const { digest } = await writer.commit({ digest: sha256(blob) });
      expect((await readAll(await store.open(digest, { start: 10, end: 19 }))).equals(blob.subarray(10, 20))).to.equal(true);
      const redirect = await store.redirectURL(digest);
      expect(redirect.url).to.match(/^http:\/\/127\.0\.0\.1:/);
      const error = await store.open(digest, { start: 5000, end: 6000 }).catch((err: unknown) => err);
      expect((error as DriverError).code).to.equal('RANGE_INVALID');
      expect(await store.delete(digest)).to.equal(true);
      expect(((await store.stat(digest).catch((err: unknown) => err)) as DriverError).code).to.equal('BLOB_UNKNOWN');
    });

    it('refuses malformed ids and digests with typed errors', async function () {
      for (const id of ['', '../x', 'abc', `${'0'.repeat(36)}.x`]) {
        expect(((await store.resume(id).catch((err: unknown) => err)) as DriverError).code).to.equal('BLOB_UPLOAD_UNKNOWN');
      }
      expect(((await store.stat('sha256:xyz').catch((err: unknown) => err)) as DriverError).code).to.equal('DIGEST_INVALID');
    });
  });
}

function* chunked(blob: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < blob.length; offset += size) yield blob.subarray(offset, offset + size);
}
