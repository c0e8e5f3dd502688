import { expect } from 'chai';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

describe('OCI-Chunk-Min-Length (distribution-spec v1.1)', function () {
  let registry: TestRegistry;
  const alice = new OciTestClient(USERS.alice);

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs' });
  });
  after(async function () {
    await registry?.close();
  });

  it('advertises the part size on POST and GET status, and chunks of that length leave nothing staged', async function () {
    const base = registry.url;
    const started = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/');
    expect(started.status).to.equal(202);
    const minimum = Number(started.headers['oci-chunk-min-length']);
    expect(minimum).to.equal(5 * MiB);
    const location = started.headers.location as string;
    const status = await alice.call(base, 'alice/app', 'GET', location);
    expect(Number(status.headers['oci-chunk-min-length'])).to.equal(minimum);
    const blob = randomBlob(2 * minimum + 123);
    for (let offset = 0; offset < 2 * minimum; offset += minimum) {
      expect((await alice.patch(base, 'alice/app', location, blob.subarray(offset, offset + minimum), offset)).status).to.equal(202);
      const staged = (await registry.hold.inspect.keys('holdfast/uploads/')).filter((key) => key.includes('/staged/'));
      expect(staged, 'whole parts only').to.deep.equal([]);
    }
    expect((await alice.patch(base, 'alice/app', location, blob.subarray(2 * minimum), 2 * minimum)).status).to.equal(202);
    expect((await alice.finish(base, 'alice/app', location, sha256(blob))).status).to.equal(201);
    expect((await alice.fetchBlob(base, 'alice/app', sha256(blob))).equals(blob)).to.equal(true);
  });
});
