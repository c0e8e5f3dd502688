import { expect } from 'chai';
import { Readable } from 'node:stream';
import pg from 'pg';
import { request } from 'undici';
import { MD5_TWIN_BLOCK, MiB, md5, md5Twins, randomBlob, sha256 } from '../support/bytes.ts';
import { StepGate } from '../support/step-gate.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

/**
 * Issue 20: one upload written through two registry instances at once (one
 * tenant sending PATCHes for the same range to both) must behave as on one
 * instance, and no digest may ever be served with bytes that do not hash to
 * it, even once the hold deduplicates another tenant's push onto them.
 */

/**
 * A PATCH that sends all of `chunk` but its last byte at once, and the last
 * byte only on `release()`: the request is then under way on its instance
 * (past the range check, its part PUT streaming) but not finished.
 */
async function heldPatch(client: OciTestClient, base: string, repo: string, location: string, chunk: Buffer, start: number) {
  const token = await client.token(base, repo);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  async function* body() {
    yield chunk.subarray(0, chunk.length - 1);
    await released;
    yield chunk.subarray(chunk.length - 1);
  }
  const response = request(`${base}${location}`, {
    method: 'PATCH',
    body: Readable.from(body()),
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(chunk.length),
      'content-range': `${start}-${start + chunk.length - 1}`,
    },
  }).then(async (answer) => ({ status: answer.statusCode, headers: answer.headers, text: await answer.body.text() }));
  response.catch(() => {});
  return { release, response };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of ['fs', 's3'] as const) {
  describe(`one upload through two registry instances (${backend}, Postgres)`, function () {
    this.timeout(120_000);
    let registry: TestRegistry;
    const alice = new OciTestClient(USERS.alice);
    const bob = new OciTestClient(USERS.bob);
    /** The hold "dies" (its /move stops with an error) right after this step, once. */
    let dieAfter: string | undefined;

    before(async function () {
      registry = await startTestRegistry({
        backend,
        metadata: 'postgres',
        instances: 2,
        holdOnStep: async (step) => {
          if (step !== dieAfter) return;
          dieAfter = undefined;
          throw new Error(`the hold died after ${step}`);
        },
        // A budget too small to keep a 3 MiB tail in memory between requests (idle tails get a
        // quarter of it): what a tenant gets with a few stalled PATCHes of its own on the default one.
        driver: { memoryBudget: 10 * MiB },
      });
    });
    after(async function () {
      await registry?.close();
    });

    /** Every blob Alice's and Bob's repositories serve hashes to its digest. */
    async function expectServedBytesMatch(repo: string, client: OciTestClient, digest: string): Promise<void> {
      for (const base of registry.urls) {
        const head = await client.call(base, repo, 'HEAD', `/v2/${repo}/blobs/${digest}`);
        if (head.status === 404) continue;
        expect(head.status).to.equal(200);
        expect(sha256(await client.fetchBlob(base, repo, digest)), `bytes served by ${base} under ${digest}`).to.equal(digest);
      }
    }

    /**
     * Alice sends `genuine` to instance 0 and `forged` to instance 1 as the
     * same range of one upload, each held back by its last byte until both
     * are under way. Exactly one may be acknowledged; the other waits for it
     * and then finds the upload has moved on (416). Alice commits the upload
     * as `genuine`'s digest: 201 only if the genuine bytes won. Whatever won,
     * every instance serves bytes that hash to the digest, and Bob, who
     * pushes the genuine bytes afterwards and is deduplicated onto whatever
     * the hold holds, pulls exactly them.
     */
    async function race(repo: string, genuine: Buffer, forged: Buffer): Promise<void> {
      const [first, second] = registry.urls as [string, string];
      const location = await alice.start(first, repo);
      const a = await heldPatch(alice, first, repo, location, genuine, 0);
      const b = await heldPatch(alice, second, repo, location, forged, 0);
      await settle(300);
      a.release();
      await settle(50);
      b.release();
      const answers = [await a.response, await b.response];
      const summary = answers.map((answer) => `${answer.status} ${answer.text}`).join(' / ');
      expect(answers.map((answer) => answer.status).sort(), `one acknowledged, the other refused: ${summary}`).to.deep.equal([202, 416]);
      expect(await alice.offset(second, repo, location)).to.equal(genuine.length);

      const genuineWon = answers[0]?.status === 202;
      const put = await alice.finish(first, repo, location, sha256(genuine));
      expect(put.status, put.text).to.equal(genuineWon ? 201 : 400);
      await expectServedBytesMatch(repo, alice, sha256(genuine));

      const pushed = await bob.call(second, 'bob/app', 'POST', `/v2/bob/app/blobs/uploads/?digest=${sha256(genuine)}`, {
        body: genuine,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(genuine.length) },
      });
      expect(pushed.status, pushed.text).to.equal(201);
      for (const base of registry.urls) expect(sha256(await bob.fetchBlob(base, 'bob/app', sha256(genuine)))).to.equal(sha256(genuine));
    }

    it('defect 3: a hold that dies inside /move after S3 assembled the upload leaves it to any instance to finish', async function () {
      const [first, second] = registry.urls as [string, string];
      const blob = randomBlob(5 * MiB + 42);
      const location = await alice.start(first, 'alice/moved');
      expect((await alice.patch(first, 'alice/moved', location, blob.subarray(0, 5 * MiB), 0)).status).to.equal(202);
      expect((await alice.patch(first, 'alice/moved', location, blob.subarray(5 * MiB), 5 * MiB)).status).to.equal(202);
      dieAfter = 'move:claimed';
      const failed = await alice.finish(first, 'alice/moved', location, sha256(blob));
      expect(failed.status, failed.text).to.be.at.least(500);
      expect(dieAfter, 'the hold died inside /move').to.equal(undefined);
      // The commit again, through the other instance: it has no writer for this upload and asks the hold.
      expect(await alice.offset(second, 'alice/moved', location)).to.equal(blob.length);
      const put = await alice.finish(second, 'alice/moved', location, sha256(blob));
      expect(put.status, put.text).to.equal(201);
      for (const base of registry.urls) expect((await alice.fetchBlob(base, 'alice/moved', sha256(blob))).equals(blob)).to.equal(true);
    });

    it('one request repeated many times at once: each instance takes in a few and answers the rest 429 at once', async function () {
      const [first] = registry.urls as [string];
      const location = await alice.start(first, 'alice/repeated');
      const chunk = randomBlob(1000);
      const running = await heldPatch(alice, first, 'alice/repeated', location, chunk, 0);
      await settle(200);
      const answered: number[] = [];
      const repeats = Array.from({ length: 12 }, () =>
        alice.patch(first, 'alice/repeated', location, chunk, 0).then((answer) => {
          answered.push(answer.status);
          return answer.status;
        }),
      );
      await settle(1000);
      // One runs and three wait their turn; the other nine are refused without waiting.
      expect(answered.filter((status) => status === 429), JSON.stringify(answered)).to.have.length(9);
      running.release();
      expect((await running.response).status).to.equal(202);
      expect((await Promise.all(repeats)).filter((status) => status !== 429), 'the three that waited find the upload moved on').to.deep.equal([416, 416, 416]);
    });

    it('defect 1: a staged tail sent through the other instance is never acknowledged too, nor served under the first one\'s digest', async function () {
      await race('alice/app', randomBlob(3 * MiB), Buffer.alloc(3 * MiB, 0x41));
    });

    it('defect 2: a whole part with the same MD5 but other bytes, sent through the other instance, is never acknowledged too, nor served under the first one\'s digest', async function () {
      const [genuine, forged] = md5Twins(randomBlob(5 * MiB - MD5_TWIN_BLOCK));
      expect(md5(genuine)).to.equal(md5(forged));
      expect(genuine.equals(forged)).to.equal(false);
      await race('alice/md5', genuine, forged);
    });
  });
}

// Two hold processes on one bucket, each instance talking to its own: with one hold process (as the fs
// backend must run) its per-upload lock already keeps /upload-status from overlapping a /move.
for (const backend of ['s3'] as const) {
  describe(`a commit that outlives its lease (${backend}, Postgres, two holds)`, function () {
    this.timeout(120_000);
    let registry: TestRegistry;
    const alice = new OciTestClient(USERS.alice);
    /** Instance 0 has stopped: its leases are not renewed. */
    let stopped = false;
    const gate = new StepGate();

    before(async function () {
      registry = await startTestRegistry({
        backend,
        metadata: 'postgres',
        instances: 2,
        holds: 2,
        limits: { uploadLeaseSeconds: 1, uploadWaitSeconds: 5 },
        hooksFor: (index) => (index === 0 ? { leaseRenewalsPaused: () => stopped } : {}),
        holdOnStep: gate.hook,
      });
    });
    after(async function () {
      await registry?.close();
    });

    it('is never undone by the request that took the upload over: the blob it published keeps its bytes', async function () {
      const [first, second] = registry.urls as [string, string];
      const blob = randomBlob(MiB + 5);
      const location = await alice.start(first, 'alice/outlived');
      expect((await alice.patch(first, 'alice/outlived', location, blob, 0)).status).to.equal(202);
      const atStep = gate.arm((step) => step === 'move:deletion-checked');
      // Instance 0 commits; the hold has marked the upload as publishing when instance 0 stops for longer than its lease.
      const committing = alice.finish(first, 'alice/outlived', location, sha256(blob));
      await atStep;
      stopped = true;
      await settle(1500);
      // The same upload committed through instance 1 under a digest its bytes do not have: refused, and the upload removed.
      const wrong = await alice.finish(second, 'alice/outlived', location, sha256(randomBlob(8)));
      expect(wrong.status, wrong.text).to.equal(400);
      stopped = false;
      gate.resume();
      const put = await committing;
      expect(put.status, put.text).to.be.oneOf([201, 503]);
      for (const base of registry.urls) {
        const head = await alice.call(base, 'alice/outlived', 'HEAD', `/v2/alice/outlived/blobs/${sha256(blob)}`);
        if (put.status === 201) expect(head.status, 'a blob answered 201 is linked').to.equal(200);
        if (head.status === 200) expect((await alice.fetchBlob(base, 'alice/outlived', sha256(blob))).equals(blob), `${base} serves the blob`).to.equal(true);
      }
      // Another tenant's push of the same bytes is deduplicated onto what the hold holds: it must be the bytes.
      const bob = new OciTestClient(USERS.bob);
      const pushed = await bob.call(second, 'bob/outlived', 'POST', `/v2/bob/outlived/blobs/uploads/?digest=${sha256(blob)}`, {
        body: blob,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      });
      expect(pushed.status, pushed.text).to.equal(201);
      expect((await bob.fetchBlob(first, 'bob/outlived', sha256(blob))).equals(blob)).to.equal(true);
    });
  });
}

describe('a PATCH whose lease the database took away while it ran (s3, Postgres)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  const alice = new OciTestClient(USERS.alice);
  let stopped = false;
  const gate = new StepGate();

  before(async function () {
    registry = await startTestRegistry({
      backend: 's3',
      metadata: 'postgres',
      instances: 2,
      hooksFor: (index) =>
        index === 0
          ? {
              leaseRenewalsPaused: () => stopped,
              uploadStep: gate.hook,
            }
          : {},
    });
  });
  after(async function () {
    await registry?.close();
  });

  it('is not acknowledged once another request took the upload, even if this process still counts on its lease', async function () {
    const [first, second] = registry.urls as [string, string];
    const location = await alice.start(first, 'alice/stolen');
    const atStep = gate.arm((step) => step === 'chunk-durable');
    stopped = true;
    const patching = alice.patch(first, 'alice/stolen', location, randomBlob(1000), 0);
    await atStep;
    // The database's clock stepped ahead (a failover to a host whose clock runs fast): the lease has run out there.
    const db = new pg.Client({ connectionString: registry.databaseUrl as string });
    await db.connect();
    try {
      await db.query('UPDATE uploads SET lease_until = 0');
    } finally {
      await db.end();
    }
    const other = await alice.patch(second, 'alice/stolen', location, randomBlob(1000), 0);
    gate.resume();
    stopped = false;
    const answer = await patching;
    const statuses = [answer.status, other.status];
    expect(statuses.filter((status) => status === 202), `one range acknowledged once: ${answer.status} ${answer.text} / ${other.status} ${other.text}`).to.have.length.at.most(1);
    expect(answer.status, answer.text).to.equal(503);
  });
});
