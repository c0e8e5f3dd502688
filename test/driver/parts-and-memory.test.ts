import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { DriverError, type BlobStore } from '../../src/driver/index.ts';

for (const backend of BACKENDS) {
  describe(`storage driver parts and memory (${backend})`, function () {
    let fixture: DriverFixture;

    before(async function () {
      fixture = await startDriverFixture(backend);
    });
    after(async function () {
      await fixture?.close();
    });

    /**
     * Writes a random blob in one request per entry of `shape` (write, close,
     * resume: a PATCH each), commits it, checks it reads back, and returns the
     * sizes of the part and staged PUTs. `storeFor(request)` picks the store
     * that resumes after each request (another driver: another instance).
     */
    async function pushInRequests(shape: readonly number[], storeFor: (request: number) => BlobStore) {
      const blob = randomBlob(shape.reduce((a, b) => a + b, 0));
      fixture.requests.length = 0;
      let writer = await storeFor(-1).create();
      let offset = 0;
      for (const [request, length] of shape.entries()) {
        await writer.write(blob.subarray(offset, offset + length));
        offset += length;
        await writer.close();
        writer = await storeFor(request).resume(writer.id);
      }
      await writer.commit({ digest: sha256(blob), size: blob.length });
      expect((await readAll(await storeFor(-1).open(sha256(blob)))).equals(blob)).to.equal(true);
      const sizes = (kind: string) => fixture.requests.filter((event) => event.kind === kind && event.status === 200).map((event) => event.bytes);
      return { blob, parts: sizes('part'), staged: sizes('staged') };
    }

    for (const [provider, partSize] of [
      ['minio', 5 * MiB],
      ['r2', 5 * MiB],
      ['storj', 64 * MiB],
    ] as const) {
      it(`sends every non-final part at exactly the part size (${provider}, ${partSize / MiB} MiB) across odd PATCH shapes`, async function () {
        const store = fixture.driver({ provider, partSize, memoryBudget: 4 * partSize + 64 * MiB }).blobStore(DIDS.owner);
        const scale = partSize / (5 * MiB);
        const { blob, parts } = await pushInRequests([7 * MiB * scale, 3 * MiB * scale, 9 * MiB * scale, 1], () => store);
        expect(parts.length).to.be.greaterThan(1);
        for (const size of parts.slice(0, -1)) expect(size).to.equal(partSize);
        expect(parts.reduce((a, b) => a + b, 0)).to.equal(blob.length);
      });
    }

    it('adopts a client\'s fixed chunk size as the part size, so only a short last chunk is staged (minio), also across driver instances', async function () {
      const chunk = 8 * MiB;
      const first = fixture.driver({ partSize: 16 * MiB }).blobStore(DIDS.owner);
      // Every other request lands on a fresh driver, as on another registry instance.
      const { parts, staged } = await pushInRequests([chunk, chunk, chunk, chunk, 3 * MiB], (request) =>
        request % 2 === 0 ? fixture.driver({ partSize: 16 * MiB }).blobStore(DIDS.owner) : first,
      );
      expect(staged).to.deep.equal([3 * MiB]);
      expect(parts).to.deep.equal([chunk, chunk, chunk, chunk, 3 * MiB]);
    });

    it('keeps the configured part size when the first chunk is too small to be a part, or the profile needs equal parts', async function () {
      for (const [provider, shape] of [
        ['minio', [3 * MiB, 8 * MiB, 8 * MiB, 1]],
        ['r2', [8 * MiB, 8 * MiB, 8 * MiB, 1]],
      ] as const) {
        const store = fixture.driver({ provider, partSize: 16 * MiB }).blobStore(DIDS.owner);
        const { parts } = await pushInRequests(shape, () => store);
        expect(parts.slice(0, -1), provider).to.deep.equal([16 * MiB]);
      }
    });

    it('keeps every later part at the adopted size when chunks change shape', async function () {
      const store = fixture.driver({ partSize: 16 * MiB }).blobStore(DIDS.owner);
      const { blob, parts } = await pushInRequests([6 * MiB, 6 * MiB, 2 * MiB, 9 * MiB, 1], () => store);
      for (const size of parts.slice(0, -1)) expect(size).to.equal(6 * MiB);
      expect(parts.reduce((a, b) => a + b, 0)).to.equal(blob.length);
    });

    it('keeps buffered bytes within the memory budget across many concurrent uploads', async function () {
      const driver = fixture.driver({ partSize: 5 * MiB, memoryBudget: 20 * MiB, maxPartsInFlight: 4 });
      const store = driver.blobStore(DIDS.owner);
      const blobs = Array.from({ length: 8 }, () => randomBlob(12 * MiB + 17));
      await Promise.all(
        blobs.map(async (blob) => {
          const writer = await store.create();
          for (let offset = 0; offset < blob.length; offset += MiB) await writer.write(blob.subarray(offset, offset + MiB));
          await writer.commit({ digest: sha256(blob), size: blob.length });
        }),
      );
      expect(driver.budget.peak).to.be.at.most(20 * MiB);
      expect(driver.budget.used).to.equal(0);
      for (const blob of blobs) expect((await store.stat(sha256(blob))).size).to.equal(blob.length);
    });

    it('makes progress when the budget holds exactly one part', async function () {
      const driver = fixture.driver({ partSize: 5 * MiB, memoryBudget: 5 * MiB });
      const store = driver.blobStore(DIDS.owner);
      const blobs = Array.from({ length: 3 }, () => randomBlob(11 * MiB));
      await Promise.all(
        blobs.map(async (blob) => {
          const writer = await store.create();
          await writer.write(blob);
          await writer.commit({ digest: sha256(blob) });
        }),
      );
      expect(driver.budget.peak).to.equal(5 * MiB);
    });

    it('refuses bytes beyond the largest blob an equal-part profile can hold', async function () {
      const driver = fixture.driver({ provider: 'r2', partSize: 5 * MiB });
      const writer = await driver.blobStore(DIDS.owner).create();
      const huge = { length: 5 * MiB * 10_000 + 1, subarray: () => new Uint8Array(0) } as unknown as Uint8Array;
      const error = await writer.write(huge).catch((err: unknown) => err);
      expect(error).to.be.instanceOf(DriverError);
      expect((error as DriverError).code).to.equal('BLOB_TOO_LARGE');
      await writer.cancel();
    });
  });
}
