import { expect } from 'chai';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

describe('attack: one DID opens upload sessions without end', function () {
  this.timeout(60_000);
  let registry: TestRegistry;
  const alice = new OciTestClient(USERS.alice);
  const bob = new OciTestClient(USERS.bob);

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs', limits: { maxOpenUploadsPerDid: 5 } });
  });
  after(async function () {
    await registry?.close();
  });

  it('gets 429 TOOMANYREQUESTS past maxOpenUploadsPerDid, creates nothing, and may open one again after a cancel', async function () {
    const base = registry.url;
    const open = await Promise.all(Array.from({ length: 5 }, () => alice.start(base, 'alice/app')));
    const refused = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/');
    expect(refused.status, refused.text).to.equal(429);
    expect(JSON.parse(refused.text).errors[0].code).to.equal('TOOMANYREQUESTS');
    expect(Number(refused.headers['retry-after'])).to.be.above(0);
    expect(await registry.registry.metadata.countUploads(USERS.alice.did, new Date(0))).to.equal(5);
    // Another DID is not affected.
    await bob.start(base, 'bob/app');
    expect((await alice.call(base, 'alice/app', 'DELETE', open[0] as string)).status).to.equal(204);
    await alice.start(base, 'alice/app');
  });
});
