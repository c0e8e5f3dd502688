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

  it('counts monolithic uploads while their bodies stream, and concurrent POSTs cannot all pass the count', async function () {
    const base = registry.url;
    // bob has one session open (the test above) and fires eight more at once.
    await bob.token(base, 'bob/burst');
    const burst = await Promise.all(Array.from({ length: 8 }, () => bob.call(base, 'bob/burst', 'POST', '/v2/bob/burst/blobs/uploads/')));
    const statuses = burst.map((response) => response.status);
    expect(statuses.every((status) => status === 202 || status === 429), statuses.join()).to.equal(true);
    expect(statuses.filter((status) => status === 202).length, statuses.join()).to.be.within(1, 4);
    expect(await registry.registry.metadata.countUploads(USERS.bob.did, new Date(0))).to.be.at.most(5);
    // Five sessions are open (the test above): a monolithic upload is refused too.
    const monolithic = await alice.call(base, 'alice/app', 'POST', '/v2/alice/app/blobs/uploads/?digest=sha256:' + '0'.repeat(64), { body: Buffer.from('x') });
    expect(monolithic.status, monolithic.text).to.equal(429);
  });
});
