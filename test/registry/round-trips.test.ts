import { expect } from 'chai';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { callsSince, holdCalls } from '../support/hold-metrics.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

/** The hold's API requests by endpoint, from its /metrics. */
async function holdRequests(holdUrl: string): Promise<Map<string, number>> {
  return (await holdCalls(holdUrl)).requests;
}

for (const backend of ['fs', 's3'] as const) {
  describe(`hold round trips of a chunked push (${backend})`, function () {
    let registry: TestRegistry;
    const alice = new OciTestClient(USERS.alice);

    before(async function () {
      // Parts larger than the chunks, as with the defaults: the first chunk's length becomes the part size.
      registry = await startTestRegistry({ backend, driver: { partSize: 16 * MiB } });
    });
    after(async function () {
      await registry?.close();
    });

    it('PATCHes of whole parts ask the hold for no part URL and, after the first, record nothing: each answer carries the next URLs', async function () {
      const base = registry.url;
      const started = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/');
      expect(started.status).to.equal(202);
      const location = started.headers.location as string;
      // Over 5 MiB, so a part fills past the size where the writer would ask for its URL ahead.
      const chunk = 6 * MiB;
      const blob = randomBlob(4 * chunk + 22);
      const before = await holdRequests(registry.hold.url);
      for (let offset = 0; offset < 4 * chunk; offset += chunk) {
        expect((await alice.patch(base, 'alice/app', location, blob.subarray(offset, offset + chunk), offset)).status).to.equal(202);
      }
      const patches = callsSince(await holdRequests(registry.hold.url), before);
      // The live writer is in the state the last request left, so no /upload-status; the URLs came with the answers.
      expect(patches['/part-presigned-url'] ?? 0, JSON.stringify(patches)).to.equal(0);
      expect(patches['/upload-status'] ?? 0, JSON.stringify(patches)).to.equal(0);
      expect(patches['/upload-progress'], `only the first records: the next ones are whole parts, with URLs at hand: ${JSON.stringify(patches)}`).to.equal(1);
      const beforeCommit = await holdRequests(registry.hold.url);
      expect((await alice.patch(base, 'alice/app', location, blob.subarray(4 * chunk), 4 * chunk)).status).to.equal(202);
      expect((await alice.finish(base, 'alice/app', location, sha256(blob))).status).to.equal(201);
      const commit = callsSince(await holdRequests(registry.hold.url), beforeCommit);
      expect(commit['/part-presigned-url'] ?? 0, `the 22-byte last part too: ${JSON.stringify(commit)}`).to.equal(0);
      expect(commit['/upload-status'] ?? 0, JSON.stringify(commit)).to.equal(0);
      expect((await alice.fetchBlob(base, 'alice/app', sha256(blob))).equals(blob)).to.equal(true);
    });

    it('a commit is one hold call: /move completes the upload and publishes it, and lists nothing', async function () {
      const base = registry.url;
      const blob = randomBlob(MiB);
      const started = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/');
      const location = started.headers.location as string;
      expect((await alice.patch(base, 'alice/app', location, blob, 0)).status).to.equal(202);
      const before = await holdCalls(registry.hold.url);
      expect((await alice.finish(base, 'alice/app', location, sha256(blob))).status).to.equal(201);
      const after = await holdCalls(registry.hold.url);
      // The fs backend serves part PUTs itself; they are the registry's S3 calls, not hold API calls.
      const requests = Object.fromEntries(Object.entries(callsSince(after.requests, before.requests)).filter(([endpoint]) => !endpoint.startsWith('/_fs/')));
      expect(requests, JSON.stringify(requests)).to.deep.equal({ '/move': 1 });
      if (backend === 's3') {
        const storage = callsSince(after.storage, before.storage);
        expect(storage.ListObjectsV2 ?? 0, JSON.stringify(storage)).to.equal(0);
        expect(storage.CompleteMultipartUpload, JSON.stringify(storage)).to.equal(1);
      }
      expect((await alice.fetchBlob(base, 'alice/app', sha256(blob))).equals(blob)).to.equal(true);
    });

    it('a PATCH of unknown length sends its tail as the last part before the commit, and bytes after it replace that part', async function () {
      const base = registry.url;
      /** Part PUTs the registry sent, where the fs backend counts them (its hold serves them). */
      const partPuts = async () => [...(await holdCalls(registry.hold.url)).requests].filter(([endpoint]) => endpoint.startsWith('/_fs/parts/')).reduce((sum, [, count]) => sum + count, 0);
      const blob = randomBlob(MiB + 7);
      const location = await alice.start(base, 'alice/app');
      expect((await alice.patchStreamed(base, 'alice/app', location, blob)).status).to.equal(202);
      const before = await partPuts();
      expect((await alice.finish(base, 'alice/app', location, sha256(blob))).status).to.equal(201);
      if (backend === 'fs') expect(await partPuts(), 'the commit sent no bytes').to.equal(before);
      expect((await alice.fetchBlob(base, 'alice/app', sha256(blob))).equals(blob)).to.equal(true);

      const longer = randomBlob(MiB + 22);
      const again = await alice.start(base, 'alice/app');
      expect((await alice.patchStreamed(base, 'alice/app', again, longer.subarray(0, MiB))).status).to.equal(202);
      expect((await alice.patch(base, 'alice/app', again, longer.subarray(MiB), MiB)).status).to.equal(202);
      expect((await alice.finish(base, 'alice/app', again, sha256(longer))).status).to.equal(201);
      expect((await alice.fetchBlob(base, 'alice/app', sha256(longer))).equals(longer)).to.equal(true);
    });

    it('asks the hold again when another request took the state the last one left (another instance, or one that ended half-way)', async function () {
      const base = registry.url;
      const started = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/');
      const location = started.headers.location as string;
      const id = location.split('/').at(-1) as string;
      const blob = randomBlob(10 * MiB + 20);
      expect((await alice.patch(base, 'alice/app', location, blob.subarray(0, 5 * MiB), 0)).status).to.equal(202);
      // Another instance's request took the upload (and the state the last one left) and gave it back.
      const record = await registry.registry.metadata.getUpload('alice/app', id);
      expect(record?.state, 'a state after a PATCH').to.be.a('string');
      const taken = await registry.registry.metadata.uploadHolds.take(id, 'another-instance', 60_000);
      expect(taken, 'taken').to.include({ state: record?.state, tookOver: false });
      expect(await registry.registry.metadata.uploadHolds.release(id, 'another-instance', (taken as { epoch: number }).epoch, undefined)).to.equal(true);
      let before = await holdRequests(registry.hold.url);
      expect((await alice.patch(base, 'alice/app', location, blob.subarray(5 * MiB, 10 * MiB), 5 * MiB)).status).to.equal(202);
      expect(callsSince(await holdRequests(registry.hold.url), before)['/upload-status'], 'no state to trust').to.equal(1);
      before = await holdRequests(registry.hold.url);
      expect((await alice.patch(base, 'alice/app', location, blob.subarray(10 * MiB), 10 * MiB)).status).to.equal(202);
      expect(callsSince(await holdRequests(registry.hold.url), before)['/upload-status'] ?? 0, 'trusted again').to.equal(0);
      expect((await alice.finish(base, 'alice/app', location, sha256(blob))).status).to.equal(201);
      expect((await alice.fetchBlob(base, 'alice/app', sha256(blob))).equals(blob)).to.equal(true);
    });
  });
}
