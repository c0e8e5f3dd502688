import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import { GarbageCollector } from '../../src/registry/gc/collector.ts';
import { AUDIENCE, DIDS, ISSUER } from '../support/hold-harness.ts';
import { sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { StepGate } from '../support/step-gate.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

/**
 * A push whose /move wrote this registry's claim just before a garbage
 * collection's release dropped it (one claim per registry and digest), and
 * then published fresh bytes once the release had deleted the old ones:
 * the registry brings the blob back, and must claim the fresh bytes again,
 * or another registry's release may delete them.
 */
describe('a push that brings back a blob garbage collection just released (s3, SQLite)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  const gate = new StepGate();
  const alice = new OciTestClient(USERS.alice);

  before(async function () {
    registry = await startTestRegistry({
      backend: 's3',
      holdOnStep: gate.hook,
    });
  });
  after(async function () {
    await registry?.close();
  });

  it('claims the fresh bytes again, so another registry\'s release keeps them', async function () {
    const bytes = randomBytes(4096);
    const digest = sha256(bytes);
    const push = () =>
      alice.call(registry.url, 'alice/revive', 'POST', `/v2/alice/revive/blobs/uploads/?digest=${digest}`, {
        body: bytes,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
      });
    expect((await push()).status).to.equal(201);

    const atClaim = gate.arm((step, subject) => step === 'move:claimed' && subject === digest);
    const again = push();
    await atClaim;
    // The blob is unreferenced: a pass releases it, dropping the claim the paused push just wrote, and the hold deletes the bytes.
    const report = await new GarbageCollector({ store: registry.registry.metadata.gc, storage: registry.registry.storage, did: DIDS.owner, graceSeconds: 0 }).run();
    expect(report.deletedBlobs).to.equal(1);
    gate.resume();
    const pushed = await again;
    expect(pushed.status, pushed.text).to.equal(201);

    // Another registry (here: another service of the same issuer, which the hold keeps apart) adopts the blob, then releases it.
    const other = new HoldClient({ url: registry.hold.url, audience: AUDIENCE, signer: new ServiceTokenSigner({ issuer: ISSUER, privateKey: registry.hold.keys.privateKey, service: 'other' }) });
    try {
      await other.claim(DIDS.owner, digest);
      expect(await other.release(DIDS.owner, digest), 'this registry claims the bytes it brought back').to.deep.equal({ deleted: false, remaining_claims: 1 });
    } finally {
      await other.close();
    }
    expect((await alice.fetchBlob(registry.url, 'alice/revive', digest)).equals(bytes)).to.equal(true);
  });
});
