import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MD5_TWIN_BLOCK, MiB, md5, md5Twins, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { putToUrl } from '../support/bytes.ts';
import { decodeWriterId } from '../../src/driver/writer-id.ts';
import { isDriverError, type BlobWriter } from '../../src/driver/types.ts';

const PART = 5 * MiB;

/**
 * Beneath the registry's lease: what a writer whose hold on the upload ran
 * out (a paused process) can still do once another process took the upload
 * over, and what a writer trusts of bytes it gets back from storage. Each
 * "process" is a driver of its own; the fences are what the registry's
 * upload row would hand out.
 */
for (const backend of BACKENDS) {
  describe(`writers fenced by epoch (${backend})`, function () {
    let fixture: DriverFixture;

    before(async function () {
      fixture = await startDriverFixture(backend);
    });
    after(async function () {
      await fixture?.close();
    });

    async function partsSent(count: number): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (fixture.requests.filter((request) => request.kind === 'part' && request.status === 200).length < count) {
        if (Date.now() > deadline) throw new Error(`fewer than ${count} part PUTs finished`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }

    async function refusal(work: Promise<unknown>): Promise<string> {
      const outcome = await work.then(
        () => 'accepted',
        (err: unknown) => (isDriverError(err) ? err.code : String(err)),
      );
      return outcome;
    }

    it('a writer whose upload was taken over can neither record nor publish, even with a part whose MD5 matches the one that replaced it', async function () {
      const [genuine, forged] = md5Twins(randomBlob(PART - MD5_TWIN_BLOCK));
      expect(md5(genuine)).to.equal(md5(forged));
      fixture.requests.length = 0;
      const first = fixture.driver().blobStore(DIDS.owner);
      const second = fixture.driver().blobStore(DIDS.owner);
      const created = await first.create();
      // Process A holds epoch 1 (its own writer, so it keeps its running hash) and sends part 1; then it stalls past its lease.
      const stale = await first.resume(created.id, { fence: { epoch: 1, tookOver: false } });
      expect(stale).to.equal(created);
      await stale.write(genuine);
      await partsSent(1);
      // Process B takes the upload over (epoch 2): it finds nothing recorded, and sends its own part 1 over A's.
      const taker = await second.resume(created.id, { fence: { epoch: 2, tookOver: true } });
      expect(taker.size).to.equal(0);
      await taker.write(forged);
      await taker.close();
      expect(taker.size).to.equal(PART);

      // A wakes up: it may neither record its part nor complete and publish it under its running hash.
      expect(await refusal(stale.close()), 'recording over the writer that took over').to.not.equal('accepted');
      expect(await refusal(stale.commit({ digest: sha256(genuine) })), 'publishing over the writer that took over').to.not.equal('accepted');
      const unknown = await refusal(first.stat(sha256(genuine)));
      expect(unknown, 'nothing under the genuine digest').to.equal('BLOB_UNKNOWN');

      // B's commit reads the object back (it has no running hash) and publishes what is there under its own digest.
      const committed = await taker.commit({ digest: sha256(forged) });
      expect(committed.digest).to.equal(sha256(forged));
      expect((await readAll(await second.open(sha256(forged)))).equals(forged)).to.equal(true);
    });

    it('a writer that takes over an upload with nothing recorded has no running hash: a part the old writer PUTs late through a URL it held is caught by the read-back', async function () {
      const [genuine, forged] = md5Twins(randomBlob(PART - MD5_TWIN_BLOCK));
      const first = fixture.driver().blobStore(DIDS.owner);
      const second = fixture.driver().blobStore(DIDS.owner);
      const created = await first.create();
      await first.resume(created.id, { fence: { epoch: 1, tookOver: false } });
      // A holds a part URL (as its writer does, from the URLs the hold hands out ahead), then stalls before its PUT lands.
      const { uploadName, uploadId } = decodeWriterId(created.id);
      const held = await fixture.hold.client.partPresignedUrl(DIDS.owner, uploadName, uploadId, 1);
      // B takes the upload over with nothing recorded (size 0) and writes its own part 1 and a tail.
      const taker = await second.resume(created.id, { fence: { epoch: 2, tookOver: true } });
      expect(taker.size).to.equal(0);
      await taker.write(forged);
      await taker.write(Buffer.from('tail'));
      await taker.close();
      // A wakes: its part 1 (the same MD5) lands over B's.
      expect((await putToUrl(held.url, genuine)).status).to.equal(200);
      const claimed = sha256(Buffer.concat([forged, Buffer.from('tail')]));
      expect(await refusal(taker.commit({ digest: claimed })), 'the object is not the bytes B was sent').to.equal('DIGEST_INVALID');
      expect(await refusal(second.stat(claimed))).to.equal('BLOB_UNKNOWN');
      // A stale writer cannot get more URLs either.
      const refused = await fixture.hold.client.partPresignedUrl(DIDS.owner, uploadName, uploadId, 2, 1).catch((err: unknown) => (err as { code?: string }).code);
      expect(refused === 'UPLOAD_STATE_CONFLICT' || refused === 'UPLOAD_UNKNOWN', String(refused)).to.equal(true);
    });

    it('a tail that left memory stays checked after the writer cache let go of the writer', async function () {
      const blob = randomBlob(3 * MiB);
      const store = fixture.driver({ memoryBudget: 10 * MiB }).blobStore(DIDS.owner);
      const writer = (await store.create()) as BlobWriter & { releaseIdleMemory(): void };
      await writer.write(blob);
      await writer.close();
      writer.releaseIdleMemory();
      const [stagedKey] = (await fixture.hold.inspect.keys('holdfast/uploads/')).filter((key) => key.includes('/staged/'));
      await fixture.hold.hold.backend.putSmall(`${fixture.hold.prefix}${stagedKey as string}`, randomBlob(3 * MiB));
      expect(await refusal(writer.commit({ digest: sha256(blob) }))).to.equal('DIGEST_INVALID');
    });

    it('a live writer is not reused after another process wrote the upload: the next request rebuilds it and its commit reads the bytes back', async function () {
      const blob = randomBlob(2 * PART + 7);
      const first = fixture.driver().blobStore(DIDS.owner);
      const second = fixture.driver().blobStore(DIDS.owner);
      const created = await first.create();
      const live = await first.resume(created.id, { fence: { epoch: 1, tookOver: false } });
      await live.write(blob.subarray(0, PART));
      await live.close();
      const other = await second.resume(created.id, { fence: { epoch: 2, tookOver: false } });
      await other.write(blob.subarray(PART, 2 * PART));
      await other.close();
      const again = await first.resume(created.id, { state: live.state as string, fence: { epoch: 3, tookOver: false } });
      expect(again, 'a writer rebuilt from the hold').to.not.equal(live);
      expect(again.size).to.equal(2 * PART);
      await again.write(blob.subarray(2 * PART));
      await again.close();
      await again.commit({ digest: sha256(blob) });
      expect((await readAll(await first.open(sha256(blob)))).equals(blob)).to.equal(true);
    });

    it('a tail fetched back from storage that is not the bytes the writer hashed is not trusted: the commit reads the object back and refuses the digest', async function () {
      const blob = randomBlob(3 * MiB);
      // A budget whose idle-tail share (a quarter) cannot keep 3 MiB: the tail leaves memory after each request.
      const store = fixture.driver({ memoryBudget: 10 * MiB }).blobStore(DIDS.owner);
      const writer: BlobWriter = await store.create();
      await writer.write(blob);
      await writer.close();
      const [stagedKey] = (await fixture.hold.inspect.keys('holdfast/uploads/')).filter((key) => key.includes('/staged/'));
      expect(stagedKey, 'the tail is staged').to.be.a('string');
      // Storage changes the staged bytes behind the writer's back (a provider fault, or anyone with the bucket's keys).
      await fixture.hold.hold.backend.putSmall(`${fixture.hold.prefix}${stagedKey as string}`, randomBlob(3 * MiB));
      expect(await refusal(writer.commit({ digest: sha256(blob) }))).to.equal('DIGEST_INVALID');
      expect(await refusal(store.stat(sha256(blob)))).to.equal('BLOB_UNKNOWN');
    });
  });
}
