import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { startFaultProxy, type Fault, type FaultProxy } from '../support/fault-proxy.ts';
import { sharedMinio } from '../support/global-fixtures.ts';

/**
 * Storage PUTs through a proxy that answers 503 SlowDown, resets connections,
 * stalls past the driver's timeout, and delays one request until its
 * presigned URL has expired. Every upload must still land byte-exact.
 *
 * Which request a fault lands on depends on how parts interleave, so one part
 * could otherwise draw a fault on every one of its attempts. Each target (an
 * object, or one part of an upload) gets at most MAX_FAULTS_PER_TARGET faults,
 * fewer than the driver's attempts: the test checks recovery, not luck.
 */
const MAX_FAULTS_PER_TARGET = 4;

function faultPlan(): (request: { method: string; path: string }) => Fault {
  let puts = 0;
  const faultsByTarget = new Map<string, number>();
  const choose = (): Fault => {
    if (puts === 2) return { kind: 'stall', ms: 6000 };
    if (puts === 4) return { kind: 'delay', ms: 2500 };
    if (puts % 3 === 0) return { kind: 'slowdown' };
    if (puts % 5 === 0) return { kind: 'reset' };
    return { kind: 'pass' };
  };
  return (request) => {
    if (request.method !== 'PUT') return { kind: 'pass' };
    puts++;
    const url = new URL(request.path, 'http://proxy');
    const target = `${url.pathname}#${url.searchParams.get('partNumber') ?? ''}`;
    const faults = faultsByTarget.get(target) ?? 0;
    if (faults >= MAX_FAULTS_PER_TARGET) return { kind: 'pass' };
    const fault = choose();
    if (fault.kind !== 'pass') faultsByTarget.set(target, faults + 1);
    return fault;
  };
}

for (const backend of BACKENDS) {
  describe(`storage driver under storage faults (${backend})`, function () {
    let fixture: DriverFixture;
    let proxy: FaultProxy;

    before(async function () {
      let holdUrl = '';
      const target = backend === 's3' ? (await sharedMinio()).endpoint : () => holdUrl;
      proxy = await startFaultProxy(target, faultPlan());
      fixture = await startDriverFixture(backend, {
        config: { presignTtlSeconds: 1, ...(backend === 'fs' ? { publicUrl: proxy.url } : {}) },
        s3: { publicEndpoint: proxy.url },
      });
      holdUrl = fixture.hold.url;
    });
    after(async function () {
      await fixture?.close();
      await proxy?.close();
    });

    it('completes uploads byte-exact through SlowDown, resets, a stall and an expired URL', async function () {
      const store = fixture.driver({ partTimeoutMs: 4000, retry: { attempts: 8, baseDelayMs: 20, maxDelayMs: 300 } }).blobStore(DIDS.owner);
      for (const size of [17 * MiB + 3, 42, 6 * MiB]) {
        const blob = randomBlob(size);
        const writer = await store.create();
        await writer.write(blob.subarray(0, Math.floor(size / 2)));
        await writer.close();
        const resumed = await store.resume(writer.id);
        await resumed.write(blob.subarray(Math.floor(size / 2)));
        await resumed.commit({ digest: sha256(blob), size });
        const read = await readAll(await store.open(sha256(blob)));
        expect(read.equals(blob)).to.equal(true);
      }
      const kinds = new Set(proxy.log.map((entry) => entry.fault));
      expect([...kinds]).to.include.members(['slowdown', 'reset', 'stall', 'delay']);
      const refused = fixture.requests.filter((event) => event.status === 403);
      // Expiry enforcement is the server's: the fs backend and MinIO refuse at once; moto never
      // checks, and versitygw's check is not reliable at a one-second lifetime. The uploads above
      // complete either way.
      if (backend === 'fs' || (await sharedMinio()).kind === 'minio') expect(refused.length, 'the delayed request used an expired URL').to.be.greaterThan(0);
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
    });

    it('surfaces a typed UNAVAILABLE error when storage never recovers', async function () {
      const failing = await startFaultProxy('http://127.0.0.1:9', () => ({ kind: 'slowdown' }));
      const broken = await startDriverFixture(backend, {
        config: backend === 'fs' ? { publicUrl: failing.url } : {},
        s3: { publicEndpoint: failing.url },
      });
      try {
        const store = broken.driver({ retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } }).blobStore(DIDS.owner);
        const writer = await store.create();
        const error = await (async () => {
          await writer.write(randomBlob(6 * MiB));
          await writer.close();
        })().catch((err: unknown) => err);
        expect((error as { code?: string }).code).to.equal('UNAVAILABLE');
        expect((error as Error).message).to.match(/SlowDown/);
        await writer.cancel();
        expect(await broken.hold.inspect.pendingMultipartUploads()).to.equal(0);
      } finally {
        await broken.close();
        await failing.close();
      }
    });
  });
}
