import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob } from '../support/bytes.ts';
import { startDriverFixture } from '../support/driver-harness.ts';
import type { DriverError } from '../../src/driver/index.ts';

for (const backend of BACKENDS) {
  describe(`abandoned uploads (${backend})`, function () {
    it('stay resumable until the TTL, then the janitor leaves nothing behind', async function () {
      let now = new Date();
      const fixture = await startDriverFixture(backend, { config: { uploadTtlSeconds: 3600 }, now: () => now });
      try {
        const store = fixture.driver().blobStore(DIDS.owner);
        const writer = await store.create();
        await writer.write(randomBlob(7 * MiB));
        await writer.close();
        now = new Date(now.getTime() + 30 * 60 * 1000);
        expect(await fixture.hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 0, skipped: 0, orphans: 0 });
        expect((await store.resume(writer.id)).size).to.equal(7 * MiB);
        now = new Date(now.getTime() + 2 * 3600 * 1000);
        expect(await fixture.hold.hold.runJanitor()).to.deep.equal({ abandoned: 0, purged: 1, skipped: 0, orphans: 0 });
        expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
        expect(await fixture.hold.inspect.keys()).to.deep.equal([]);
        const gone = await store.resume(writer.id).catch((err: unknown) => err);
        expect((gone as DriverError).code).to.equal('BLOB_UPLOAD_UNKNOWN');
      } finally {
        await fixture.close();
      }
    });
  });
}
