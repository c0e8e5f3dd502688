import { expect } from 'chai';
import { DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import { AUDIENCE } from '../support/hold-harness.ts';
import type { DriverError } from '../../src/driver/index.ts';

/** Failures half-way through an operation must leave the upload usable. */
describe('storage driver recovery (s3)', function () {
  let fixture: DriverFixture;
  let storageProxy: FaultProxy;
  let holdProxy: FaultProxy;
  let failStorageGets = false;
  let failMoves = 0;
  let loseMoveAnswers = 0;

  before(async function () {
    storageProxy = await startFaultProxy((await sharedMinio()).endpoint, (request) =>
      failStorageGets && request.method === 'GET' ? { kind: 'slowdown' } : { kind: 'pass' },
    );
    let holdUrl = '';
    holdProxy = await startFaultProxy(
      () => holdUrl,
      (request) => {
        if (request.path !== '/move') return { kind: 'pass' };
        if (failMoves-- > 0) return { kind: 'slowdown' };
        return loseMoveAnswers-- > 0 ? { kind: 'answer-lost' } : { kind: 'pass' };
      },
    );
    fixture = await startDriverFixture('s3', { s3: { publicEndpoint: storageProxy.url } });
    holdUrl = fixture.hold.url;
  });
  after(async function () {
    await fixture?.close();
    await storageProxy?.close();
    await holdProxy?.close();
  });

  it('a tail that fails to load leaves the writer consistent, and the next write succeeds', async function () {
    const blob = randomBlob(7 * MiB + 11);
    const first = fixture.driver().blobStore(DIDS.owner);
    const writer = await first.create();
    await writer.write(blob.subarray(0, 3 * MiB));
    await writer.close();
    const other = fixture.driver({ retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const resumed = await other.blobStore(DIDS.owner).resume(writer.id);
    failStorageGets = true;
    const error = await resumed.write(blob.subarray(3 * MiB, 4 * MiB)).catch((err: unknown) => err);
    expect((error as DriverError).code).to.equal('UNAVAILABLE');
    await resumed.close();
    expect(other.budget.used, 'the failed load returned its buffer').to.equal(0);
    failStorageGets = false;
    const again = await other.blobStore(DIDS.owner).resume(writer.id);
    expect(again.size).to.equal(3 * MiB);
    await again.write(blob.subarray(3 * MiB));
    await again.commit({ digest: sha256(blob), size: blob.length });
    expect((await readAll(await first.open(sha256(blob)))).equals(blob)).to.equal(true);
  });

  it('a commit whose /move failed can be retried from a fresh process', async function () {
    const blob = randomBlob(6 * MiB + 5);
    const flaky = fixture.driver({ hold: { url: holdProxy.url, audience: AUDIENCE }, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const writer = await flaky.blobStore(DIDS.owner).create();
    await writer.write(blob);
    // As the registry does after each request: every byte durable.
    await writer.close();
    failMoves = 100;
    const error = await writer.commit({ digest: sha256(blob) }).catch((err: unknown) => err);
    expect((error as DriverError).code).to.equal('UNAVAILABLE');
    failMoves = 0;
    expect(flaky.budget.used, 'the failed commit returned its part buffer; only the 1 MiB tail copy stays').to.equal(MiB + 5);
    const retried = await fixture.driver().blobStore(DIDS.owner).resume(writer.id);
    expect(retried.size).to.equal(blob.length);
    const descriptor = await retried.commit({ digest: sha256(blob), size: blob.length });
    expect(descriptor.size).to.equal(blob.length);
    expect((await readAll(await fixture.driver().blobStore(DIDS.owner).open(sha256(blob)))).equals(blob)).to.equal(true);
    expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
    expect(await fixture.hold.inspect.keys('holdfast/uploads/')).to.deep.equal([]);
  });

  it('a commit whose /move answer was lost after the hold published it succeeds: the repeat finds the blob', async function () {
    const blob = randomBlob(6 * MiB + 5);
    const flaky = fixture.driver({ hold: { url: holdProxy.url, audience: AUDIENCE }, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const writer = await flaky.blobStore(DIDS.owner).create();
    await writer.write(blob);
    loseMoveAnswers = 1;
    const descriptor = await writer.commit({ digest: sha256(blob), size: blob.length });
    expect(loseMoveAnswers, 'the first answer was lost').to.be.below(1);
    expect(descriptor).to.include({ digest: sha256(blob), size: blob.length });
    expect((await readAll(await fixture.driver().blobStore(DIDS.owner).open(sha256(blob)))).equals(blob)).to.equal(true);
    expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
  });

  it('a write that waits too long for the memory budget fails with BUSY (429) instead of hanging', async function () {
    const driver = fixture.driver({ partSize: 5 * MiB, memoryBudget: 5 * MiB, bufferWaitMs: 200 });
    const store = driver.blobStore(DIDS.owner);
    const holder = await store.create();
    await holder.write(randomBlob(MiB));
    const waiter = await store.create();
    const error = await waiter.write(randomBlob(MiB)).catch((err: unknown) => err);
    expect((error as DriverError).code).to.equal('BUSY');
    await holder.cancel();
    await waiter.cancel();
  });
});
