import { expect } from 'chai';
import { DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';

/** A writer's buffers belong to it until its bytes are durable, and go back to the budget when it is done. */
describe('storage driver writer memory (fs)', function () {
  let fixture: DriverFixture;

  before(async function () {
    fixture = await startDriverFixture('fs');
  });
  after(async function () {
    await fixture?.close();
  });

  it('a writer evicted from the cache between two chunks of one request keeps its bytes', async function () {
    const driver = fixture.driver({ maxCachedWriters: 1 });
    const victim = await driver.blobStore(DIDS.owner).create();
    const blob = randomBlob(2 * MiB);
    await victim.write(blob.subarray(0, MiB));
    // Another tenant's upload pushes the victim's writer out of the cache, and fills a buffer of its own.
    const other = await driver.blobStore(DIDS.crewWrite).create();
    await other.write(Buffer.alloc(MiB, 0x41));
    await victim.write(blob.subarray(MiB));
    await victim.close();
    const descriptor = await victim.commit({ digest: sha256(blob) });
    expect(descriptor.size).to.equal(blob.length);
    const stored = await readAll(await driver.blobStore(DIDS.owner).open(sha256(blob)));
    expect(sha256(stored), 'the stored bytes hash to their digest').to.equal(sha256(blob));
    await other.cancel();
    expect(driver.budget.used).to.equal(0);
  });

  it('gives every byte back after a Docker-style push (PATCH, then an empty PUT)', async function () {
    const driver = fixture.driver();
    const store = driver.blobStore(DIDS.owner);
    const blob = randomBlob(MiB + 7);
    const writer = await store.create();
    await writer.write(blob);
    await writer.close();
    expect(driver.budget.used, 'the idle tail is kept between the PATCH and the PUT').to.equal(blob.length);
    const resumed = await store.resume(writer.id);
    await resumed.commit({ digest: sha256(blob) });
    expect(driver.budget.used).to.equal(0);
    expect(driver.cachedWriters).to.equal(0);
  });

  it('gives every byte back when a commit is refused for a wrong digest', async function () {
    const driver = fixture.driver();
    const writer = await driver.blobStore(DIDS.owner).create();
    await writer.write(randomBlob(MiB));
    await writer.close();
    const error = await writer.commit({ digest: sha256(Buffer.from('something else')) }).catch((err: unknown) => err);
    expect((error as { code?: string }).code).to.equal('DIGEST_INVALID');
    expect(driver.budget.used).to.equal(0);
  });
});
