import { expect } from 'chai';
import { DIDS } from '../support/hold-harness.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { expectStored as expectStoredExactly, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';
import { startFaultProxy, type Fault, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import type { BlobStore, DriverError } from '../../src/driver/index.ts';

/**
 * Requests that do not say their length (a Docker-style PATCH of a whole
 * blob): once a request has filled one whole part, each later part's PUT
 * starts as soon as its buffer is allocated and carries the bytes as they
 * arrive, so a part leaves memory about when its last byte comes. The PUTs
 * go through a proxy, which sees when each one starts and can fail it.
 */
const PART = 5 * MiB;
const PIECE = 64 * 1024;

const partNumberOf = (request: ProxiedRequest) => Number(new URL(request.path, 'http://proxy').searchParams.get('partNumber') ?? 0);

// S3 only: the fs backend's URLs carry the part number inside a signed token, so the proxy could not tell parts apart.
describe('storage driver, parts streamed from requests of unknown length (s3)', function () {
  let fixture: DriverFixture;
  let proxy: FaultProxy;
  let plan: (request: ProxiedRequest) => Fault = () => ({ kind: 'pass' });
  let store: BlobStore;

  before(async function () {
    proxy = await startFaultProxy((await sharedMinio()).endpoint, (request) => plan(request));
    fixture = await startDriverFixture('s3', { s3: { publicEndpoint: proxy.url } });
    store = fixture.driver({ retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 } }).blobStore(DIDS.owner);
  });
  afterEach(function () {
    plan = () => ({ kind: 'pass' });
  });
  after(async function () {
    await fixture?.close();
    await proxy?.close();
  });

  /** Part PUTs the proxy has seen start since `since`, by part number. */
  const partPutsSince = (since: number) => proxy.log.slice(since).filter((entry) => entry.request.method === 'PUT' && partNumberOf(entry.request) > 0);
  const started = (since: number, partNumber: number) => partPutsSince(since).some((entry) => partNumberOf(entry.request) === partNumber);

  /** Yields `blob` in 64 KiB pieces; at `at`, waits (up to 2 s) for `until`, records whether it held, and then continues or throws. */
  async function* arriving(blob: Buffer, checkpoint?: { at: number; until: () => boolean; seen: boolean[]; thenThrow?: boolean }): AsyncGenerator<Buffer> {
    for (let offset = 0; offset < blob.length; offset += PIECE) {
      if (checkpoint && offset === checkpoint.at) {
        const deadline = Date.now() + 2000;
        while (!checkpoint.until() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        checkpoint.seen.push(checkpoint.until());
        if (checkpoint.thenThrow) throw new Error('client went away');
      }
      yield blob.subarray(offset, Math.min(offset + PIECE, blob.length));
    }
  }

  const expectStored = (blob: Buffer) => expectStoredExactly(fixture, store, blob);

  for (const [label, size] of [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['5 MiB - 1', PART - 1],
    ['5 MiB (a part exactly)', PART],
    ['5 MiB + 1', PART + 1],
    ['2 parts exactly', 2 * PART],
    ['2 parts + 1 byte', 2 * PART + 1],
    ['7 parts + 13 bytes', 7 * PART + 13],
  ] as const) {
    it(`writes ${label} byte-exact`, async function () {
      const blob = randomBlob(size);
      const writer = await store.create();
      expect(await writer.readFrom(arriving(blob))).to.equal(size);
      await writer.close();
      await (await store.resume(writer.id)).commit({ digest: sha256(blob), size });
      await expectStored(blob);
    });
  }

  it('buffers the first part, then starts each later part PUT while its first bytes arrive', async function () {
    const blob = randomBlob(4 * PART + 77);
    const since = proxy.log.length;
    const firstSeen: boolean[] = [];
    const writer = await store.create();
    // Mid first part: a request of unknown length may be a small blob, so nothing is streamed yet.
    const first = arriving(blob.subarray(0, PART + MiB), { at: MiB, until: () => started(since, 1), seen: firstSeen });
    // Mid third part of the same request: its PUT is already open.
    const thirdSeen: boolean[] = [];
    const rest = arriving(blob.subarray(PART + MiB), { at: PART + MiB, until: () => started(since, 3), seen: thirdSeen });
    await writer.readFrom(
      (async function* () {
        yield* first;
        yield* rest;
      })(),
    );
    await writer.close();
    expect(firstSeen, 'part 1 not sent while it fills').to.deep.equal([false]);
    expect(thirdSeen, 'part 3 PUT open while it fills').to.deep.equal([true]);
    await (await store.resume(writer.id)).commit({ digest: sha256(blob), size: blob.length });
    await expectStored(blob);
  });

  it('keeps every byte that arrived when the client goes away mid-part after its PUT started, and the unfinished PUT is no part', async function () {
    const blob = randomBlob(4 * PART + 123);
    const cutAt = 2 * PART + 2 * MiB;
    const since = proxy.log.length;
    const seen: boolean[] = [];
    const writer = await store.create();
    const error = await writer.readFrom(arriving(blob, { at: cutAt, until: () => started(since, 3), seen, thenThrow: true })).catch((err: unknown) => err);
    expect((error as Error).message).to.equal('client went away');
    expect(seen, 'part 3 PUT was streaming').to.deep.equal([true]);
    await writer.close();
    const resumed = await store.resume(writer.id);
    expect(resumed.size, 'every byte that arrived is durable').to.equal(cutAt);
    await resumed.readFrom(arriving(blob.subarray(cutAt)));
    await resumed.close();
    await (await store.resume(writer.id)).commit({ digest: sha256(blob), size: blob.length });
    await expectStored(blob);
  });

  it('sends a streamed part again from its buffer when its PUT fails', async function () {
    const failed = new Set<number>();
    plan = (request) => {
      const partNumber = partNumberOf(request);
      if (request.method !== 'PUT' || partNumber < 2 || failed.has(partNumber)) return { kind: 'pass' };
      failed.add(partNumber);
      return partNumber % 2 === 0 ? { kind: 'reset' } : { kind: 'slowdown' };
    };
    const blob = randomBlob(5 * PART + 999);
    const writer = await store.create();
    await writer.readFrom(arriving(blob));
    await writer.close();
    expect([...failed].sort(), 'each part after the first failed once').to.include.members([2, 3, 4, 5]);
    await (await store.resume(writer.id)).commit({ digest: sha256(blob), size: blob.length });
    await expectStored(blob);
  });

  it('fails cleanly, committing nothing, when streamed part PUTs never succeed', async function () {
    plan = (request) => (request.method === 'PUT' && partNumberOf(request) >= 2 ? { kind: 'slowdown' } : { kind: 'pass' });
    const blob = randomBlob(4 * PART + 5);
    const writer = await store.create();
    const error = await (async () => {
      await writer.readFrom(arriving(blob));
      await writer.close();
      await writer.commit({ digest: sha256(blob), size: blob.length });
    })().catch((err: unknown) => err);
    expect((error as DriverError).code).to.equal('UNAVAILABLE');
    plan = () => ({ kind: 'pass' });
    expect(((await store.stat(sha256(blob)).catch((err: unknown) => err)) as DriverError).code).to.equal('BLOB_UNKNOWN');
    await (await store.resume(writer.id)).cancel();
    expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
  });
});
