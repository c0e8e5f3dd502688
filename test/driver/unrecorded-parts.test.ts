import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { callsSince, holdCalls } from '../support/hold-metrics.ts';

const PART = 5 * MiB;

/** Requests of whole parts leave them unrecorded at the hold; whoever resumes must still find every durable byte. */
for (const backend of BACKENDS) {
  describe(`whole parts left unrecorded (${backend})`, function () {
    let fixture: DriverFixture;

    before(async function () {
      fixture = await startDriverFixture(backend);
    });
    after(async function () {
      await fixture?.close();
    });

    async function progressCalls(work: () => Promise<void>): Promise<number> {
      const before = (await holdCalls(fixture.hold.url)).requests;
      await work();
      return callsSince((await holdCalls(fixture.hold.url)).requests, before)['/upload-progress'] ?? 0;
    }

    async function expectStored(blob: Buffer): Promise<void> {
      const read = await readAll(await fixture.driver().blobStore(DIDS.owner).open(sha256(blob)));
      expect(read.equals(blob)).to.equal(true);
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
      expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
    }

    it('requests of whole parts after the first make no hold call, and another process resumes from every durable byte', async function () {
      const blob = randomBlob(4 * PART + 22);
      const writer = await fixture.driver().blobStore(DIDS.owner).create();
      const calls = await progressCalls(async () => {
        for (let offset = 0; offset < 4 * PART; offset += PART) {
          await writer.write(blob.subarray(offset, offset + PART));
          await writer.close();
        }
      });
      expect(calls, 'only the first request records').to.equal(1);
      const resumed = await fixture.driver().blobStore(DIDS.owner).resume(writer.id);
      expect(resumed.size).to.equal(4 * PART);
      await resumed.write(blob.subarray(4 * PART));
      await resumed.close();
      await resumed.commit({ digest: sha256(blob), size: blob.length });
      await expectStored(blob);
    });

    it('a live writer whose unrecorded parts an /upload-status recorded goes on with its running hash', async function () {
      const blob = randomBlob(3 * PART + 5);
      const store = fixture.driver().blobStore(DIDS.owner);
      const writer = await store.create();
      for (let offset = 0; offset < 3 * PART; offset += PART) {
        await writer.write(blob.subarray(offset, offset + PART));
        await writer.close();
      }
      // No state to match: the store asks the hold, which records parts 2 and 3.
      const resumed = await store.resume(writer.id);
      expect(resumed, 'the same live writer').to.equal(writer);
      const gets = fixture.requests.length;
      expect(await progressCalls(async () => {
        await resumed.write(blob.subarray(3 * PART));
        await resumed.close();
      }), 'its next record starts from what the hold recorded').to.equal(1);
      await resumed.commit({ digest: sha256(blob), size: blob.length });
      expect(fixture.requests.slice(gets).filter((request) => request.method === 'GET'), 'the commit read nothing back').to.deep.equal([]);
      await expectStored(blob);
    });

    it('a live writer goes on after another process\'s status recorded the parts it left unrecorded', async function () {
      const blob = randomBlob(3 * PART + 9);
      const writer = await fixture.driver().blobStore(DIDS.owner).create();
      for (let offset = 0; offset < 3 * PART; offset += PART) {
        await writer.write(blob.subarray(offset, offset + PART));
        await writer.close();
      }
      // A GET status served by another instance: its /upload-status records parts 2 and 3.
      expect((await fixture.driver().blobStore(DIDS.owner).resume(writer.id)).size).to.equal(3 * PART);
      await writer.write(blob.subarray(3 * PART));
      await writer.close();
      await writer.commit({ digest: sha256(blob), size: blob.length });
      await expectStored(blob);
    });

    it('a last part sent ahead of a commit is not taken for a whole part by a process that resumes', async function () {
      const blob = randomBlob(2 * PART + MiB);
      const writer = await fixture.driver().blobStore(DIDS.owner).create();
      for (let offset = 0; offset < 2 * PART; offset += PART) {
        await writer.write(blob.subarray(offset, offset + PART));
        await writer.close();
      }
      // A request of unknown length ending in a 1 MiB tail: staged, and sent as part 3 ahead of the commit.
      await writer.readFrom([blob.subarray(2 * PART)]);
      await writer.close();
      const resumed = await fixture.driver().blobStore(DIDS.owner).resume(writer.id);
      expect(resumed.size).to.equal(blob.length);
      await resumed.commit({ digest: sha256(blob), size: blob.length });
      await expectStored(blob);
    });
  });
}

describe('whole parts left unrecorded, as the record ages (fs)', function () {
  let fixture: DriverFixture;

  before(async function () {
    // A record lives 2 s after each write; no janitor runs.
    fixture = await startDriverFixture('fs', { config: { uploadTtlSeconds: 2, janitorIntervalSeconds: 0 } });
  });
  after(async function () {
    await fixture?.close();
  });

  it('records again once half the record’s lifetime has passed, so the janitor never finds an upload in use idle', async function () {
    const writer = await fixture.driver().blobStore(DIDS.owner).create();
    const before = (await holdCalls(fixture.hold.url)).requests;
    const request = async () => {
      await writer.write(randomBlob(PART));
      await writer.close();
    };
    await request();
    await request();
    const recorded = () => holdCalls(fixture.hold.url).then((calls) => callsSince(calls.requests, before)['/upload-progress']);
    expect(await recorded(), 'the first request records, the second need not').to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await request();
    expect(await recorded(), 'past half the lifetime').to.equal(2);
    await writer.cancel();
  });
});
