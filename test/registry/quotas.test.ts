import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { Quotas } from '../../src/hold/quotas/quotas.ts';
import { sha256 } from '../support/bytes.ts';
import { AUDIENCE, DIDS } from '../support/hold-harness.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';
import { collect } from '../support/collect.ts';

const MiB = 1024 * 1024;

/** The error of a 403 answer, which must be `DENIED`. */
function deniedError(response: { status: number; text: string }): { code: string; message: string } {
  expect(response.status, response.text).to.equal(403);
  const error = (JSON.parse(response.text) as { errors: { code: string; message: string }[] }).errors[0];
  expect(error?.code).to.equal('DENIED');
  return error as { code: string; message: string };
}
const denied = (response: { status: number; text: string }) => deniedError(response).message;
const LIMIT = 12 * MiB;

for (const [backend, metadata] of [
  ['fs', 'sqlite'],
  ['s3', 'postgres'],
] as const) {
  describe(`quotas through the registry (${backend}, ${metadata})`, function () {
    this.timeout(300_000);
    let registry: TestRegistry;
    let quotas: Quotas;
    const bob = new OciTestClient(USERS.bob);
    const repo = 'bob/app';

    before(async function () {
      registry = await startTestRegistry({
        backend,
        metadata,
        hold: {
          crew: [
            { did: DIDS.crewWrite, access: 'write', tier: 'ci' },
            { did: DIDS.crewRead, access: 'read' },
          ],
          quotas: { tiers: { ci: LIMIT } },
        },
      });
      quotas = registry.hold.hold.service.quotas as Quotas;
    });
    after(async function () {
      await registry?.close();
    });

    it('a push inside the limit lands and is counted once, however many repositories hold it', async function () {
      const layer = randomBytes(4 * MiB);
      for (const name of [repo, 'bob/other']) {
        const pushed = await bob.call(registry.url, name, 'POST', `/v2/${name}/blobs/uploads/?digest=${sha256(layer)}`, { body: layer, headers: { 'content-type': 'application/octet-stream' } });
        expect(pushed.status, pushed.text).to.equal(201);
      }
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(4 * MiB);
    });

    it('a monolithic push that would pass the limit is refused with 403 DENIED and the numbers, and nothing is stored', async function () {
      const layer = randomBytes(9 * MiB);
      const message = denied(await bob.call(registry.url, repo, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(layer)}`, { body: layer, headers: { 'content-type': 'application/octet-stream' } }));
      expect(message).to.equal(`quota exceeded for ${DIDS.crewWrite} on ${AUDIENCE}: 4.2 MB used of 12.6 MB (tier ci); this push adds 9.4 MB`);
      expect(await registry.hold.client.stat(DIDS.owner, sha256(layer)).then(() => true, () => false)).to.equal(false);
      expect((await bob.call(registry.url, repo, 'HEAD', `/v2/${repo}/blobs/${sha256(layer)}`)).status).to.equal(404);
    });

    it('a chunked upload is stopped once its recorded bytes pass the limit, and never published', async function () {
      const location = await bob.start(registry.url, repo);
      const chunk = 5 * MiB;
      const statuses: number[] = [];
      let message = '';
      for (let offset = 0; offset < 40 * MiB && !message; offset += chunk) {
        const response = await bob.patch(registry.url, repo, location, randomBytes(chunk), offset);
        statuses.push(response.status);
        if (response.status !== 202) message = denied(response);
      }
      expect(message, `statuses: ${statuses.join(', ')}`).to.match(/^quota exceeded for did:plc:crewwrite0+ on did:web:hold\.test: 4\.2 MB used of 12\.6 MB \(tier ci\); this push adds \d+(\.\d)? MB$/);
      expect(statuses.length * chunk, 'refused only once the bytes sent pass the room left (8 MiB)').to.be.greaterThan(8 * MiB);
      expect(statuses.length, 'and before the 40 MiB were sent').to.be.lessThan(8);
      expect(await quotas.usage(DIDS.crewWrite)).to.equal(4 * MiB);
      await bob.call(registry.url, repo, 'DELETE', location);
    });

    it('at the limit, the upload POST is refused and no bytes move after it', async function () {
      const fill = randomBytes(LIMIT - 4 * MiB);
      expect((await bob.call(registry.url, repo, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(fill)}`, { body: fill, headers: { 'content-type': 'application/octet-stream' } })).status).to.equal(201);
      const before = (await registry.hold.inspect?.keys?.('holdfast/uploads/').catch(() => [])) ?? [];
      const post = await bob.call(registry.url, repo, 'POST', `/v2/${repo}/blobs/uploads/`);
      expect(denied(post)).to.equal(`quota exceeded for ${DIDS.crewWrite} on ${AUDIENCE}: 12.6 MB used of 12.6 MB (tier ci)`);
      const after = (await registry.hold.inspect?.keys?.('holdfast/uploads/').catch(() => [])) ?? [];
      expect(after.length, 'no upload was started at the hold').to.equal(before.length);
      // A mount of bytes the DID is not yet charged for is refused too.
      const alice = await registry.token('alice', 'repository:alice/lib:pull,push');
      const foreign = randomBytes(1000);
      const put = await request(`${registry.url}/v2/alice/lib/blobs/uploads/?digest=${sha256(foreign)}`, { method: 'POST', body: foreign, headers: { authorization: `Bearer ${alice}` } });
      await put.body.dump();
      expect(put.statusCode).to.equal(201);
      denied(await bob.call(registry.url, repo, 'POST', `/v2/${repo}/blobs/uploads/?mount=${sha256(foreign)}&from=alice/lib`));
    });
  });
}

for (const [backend, metadata] of [
  ['fs', 'sqlite'],
  ['s3', 'postgres'],
] as const) describe(`namespace quotas in the registry (${backend}, ${metadata})`, function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  const alice = new OciTestClient(USERS.alice);

  before(async function () {
    registry = await startTestRegistry({ backend, metadata, policies: { namespaceQuotas: [{ namespaces: 'alice', limit: '10MB' }] } });
  });
  after(async function () {
    await registry?.close();
  });

  const push = (repo: string, blob: Buffer) =>
    alice.call(registry.url, repo, 'POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { body: blob, headers: { 'content-type': 'application/octet-stream' } });

  it('counts a blob once across the namespace, refuses the link that would pass, and leaves the refused bytes to GC', async function () {
    const six = randomBytes(6_000_000);
    expect((await push('alice/a', six)).status).to.equal(201);
    expect((await push('alice/b', six)).status, 'already in the namespace: adds nothing').to.equal(201);
    const five = randomBytes(5_000_000);
    expect(deniedError(await push('alice/a', five))).to.deep.equal({ code: 'DENIED', message: 'quota exceeded for namespace alice on this registry: 6 MB used of 10 MB; this push adds 5 MB' });
    expect(await registry.registry.metadata.getBlob('alice/a', sha256(five))).to.equal(undefined);
    expect((await collect(registry.registry.metadata.gc.previewReview('blob', new Date()))).map((candidate) => candidate.digest), 'the refused bytes are a GC candidate').to.include(sha256(five));
  });

  it('at the limit, an upload start and a mount are refused; other namespaces are not limited', async function () {
    expect((await push('alice', randomBytes(4_000_000))).status, 'the repository named as the namespace counts too').to.equal(201);
    expect(deniedError(await push('alice', randomBytes(10)))?.code).to.equal('DENIED');
    expect(deniedError(await alice.call(registry.url, 'alice/c', 'POST', '/v2/alice/c/blobs/uploads/'))?.message).to.equal('quota exceeded for namespace alice on this registry: 10 MB used of 10 MB');
    const bob = new OciTestClient(USERS.bob);
    const theirs = randomBytes(1000);
    expect((await bob.call(registry.url, 'bob/x', 'POST', `/v2/bob/x/blobs/uploads/?digest=${sha256(theirs)}`, { body: theirs, headers: { 'content-type': 'application/octet-stream' } })).status).to.equal(201);
    expect(deniedError(await alice.call(registry.url, 'alice/c', 'POST', `/v2/alice/c/blobs/uploads/?mount=${sha256(theirs)}&from=bob/x`))?.code).to.equal('DENIED');
  });
});

describe('quotas with two registries and two hold processes (s3, postgres)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  const bob = new OciTestClient(USERS.bob);

  before(async function () {
    registry = await startTestRegistry({
      backend: 's3',
      metadata: 'postgres',
      instances: 2,
      holds: 2,
      hold: {
        crew: [
          { did: DIDS.crewWrite, access: 'write', tier: 'ci' },
          { did: DIDS.crewRead, access: 'read' },
        ],
        quotas: { tiers: { ci: 3_000_000 } },
      },
    });
  });
  after(async function () {
    await registry?.close();
  });

  it('two pushes for one user at once, one through each, with room for one: exactly one lands', async function () {
    const blobs = [randomBytes(2_000_000), randomBytes(2_000_000)];
    const responses = await Promise.all(
      blobs.map((blob, index) =>
        bob.call(registry.urls[index] as string, 'bob/app', 'POST', `/v2/bob/app/blobs/uploads/?digest=${sha256(blob)}`, { body: blob, headers: { 'content-type': 'application/octet-stream' } }),
      ),
    );
    expect(responses.map((response) => response.status).sort()).to.deep.equal([201, 403]);
    expect(await (registry.hold.hold.service.quotas as Quotas).usage(DIDS.crewWrite)).to.equal(2_000_000);
  });
});

