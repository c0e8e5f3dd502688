import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BlobStore } from '../../src/driver/types.ts';
import { GarbageCollector } from '../../src/registry/gc/collector.ts';
import type { StorageDriver } from '../../src/registry/http/context.ts';
import type { GcCandidate } from '../../src/metadata/oci/gc.ts';
import { SqlMetadataStore } from '../../src/metadata/oci/store.ts';
import { sharedPostgres } from '../support/global-fixtures.ts';
import { collect } from '../support/collect.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const MINUTE = 60_000;
/** A pass's view of time: when it sweeps, and before when a deletion counts as abandoned (10 minutes). */
const at = (ms: number) => ({ now: new Date(ms), staleBefore: new Date(ms - 10 * MINUTE) });

// Two registry instances (or a registry and `holdfast gc`) share one database:
// each has its own store, its own connection or pool.
for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`gc sweeps from two registries on one database (${kind})`, function () {
    let one: SqlMetadataStore;
    let two: SqlMetadataStore;
    let dir: string | undefined;
    /** A minute after the candidates were marked: they are past a grace period of a minute. */
    let t0: number;
    let cutoff: Date;

    beforeEach(async function () {
      if (kind === 'sqlite') {
        dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-gc-sweep-'));
        const file = path.join(dir, 'registry.db');
        one = await SqlMetadataStore.open({ kind, path: file });
        two = await SqlMetadataStore.open({ kind, path: file });
      } else {
        const url = await (await sharedPostgres()).createDatabase();
        one = await SqlMetadataStore.open({ kind, url });
        two = await SqlMetadataStore.open({ kind, url });
      }
    });
    /**
     * The store whose sweeps run at the same moment as `one`'s. Two SQLite
     * connections in one process cannot overlap transactions (the waiting one
     * blocks the event loop the other needs to commit), so on SQLite the race
     * is between two sweeps on one connection, which its lock runs one after
     * the other, as SQLite runs transactions from two processes.
     */
    const rival = () => (kind === 'sqlite' ? one : two);

    afterEach(async function () {
      await one?.close();
      await two?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** Unreferenced blobs, linked and then marked as candidates (links are stamped with the real time). */
    async function candidates(count: number): Promise<GcCandidate[]> {
      for (let n = 0; n < count; n++) await one.linkBlob('alice/app', { digest: digest(n), size: 10 + n });
      const markedAt = Date.now();
      t0 = markedAt + MINUTE;
      cutoff = new Date(markedAt + 1);
      await one.gc.review('blob', new Date(markedAt));
      const found = await collect(one.gc.candidates('blob'));
      expect(found).to.have.length(count);
      return found;
    }

    async function onlyCandidate(): Promise<GcCandidate> {
      return (await candidates(1))[0] as GcCandidate;
    }

    it('gives the deletion to exactly one of two sweeps racing for each candidate (20 candidates)', async function () {
      for (const candidate of await candidates(20)) {
        const outcomes = await Promise.all([one.gc.sweepBlob(candidate, cutoff, at(t0)), rival().gc.sweepBlob(candidate, cutoff, at(t0))]);
        expect(outcomes.sort(), candidate.digest).to.deep.equal(['delete', 'waiting']);
      }
    });

    it('leaves a deletion in progress to its holder: a later pass waits instead of releasing it again', async function () {
      const candidate = await onlyCandidate();
      expect(await one.gc.sweepBlob(candidate, cutoff, at(t0))).to.equal('delete');
      expect(await two.gc.sweepBlob(candidate, cutoff, at(t0 + MINUTE)), 'the other registry').to.equal('waiting');
      expect(await one.gc.sweepBlob(candidate, cutoff, at(t0 + 2 * MINUTE)), 'a later pass of the same registry').to.equal('waiting');
      await one.gc.finishBlob(candidate, new Date(t0));
      expect(await one.getBlob('alice/app', candidate.digest)).to.equal(undefined);
      expect(await collect(one.gc.candidates('blob'))).to.deep.equal([]);
    });

    it('takes over a deletion stuck in deleting only after the timeout, by exactly one pass, and fences off the old holder', async function () {
      const candidate = await onlyCandidate();
      expect(await one.gc.sweepBlob(candidate, cutoff, at(t0))).to.equal('delete');
      // The holder dies. Before the timeout nobody takes over.
      expect(await two.gc.sweepBlob(candidate, cutoff, at(t0 + 9 * MINUTE))).to.equal('waiting');
      expect((await two.gc.blobState(candidate.digest))?.deletingSince?.getTime(), 'the wait leaves the marker alone').to.equal(t0);
      const late = t0 + 11 * MINUTE;
      const outcomes = await Promise.all([one.gc.sweepBlob(candidate, cutoff, at(late)), rival().gc.sweepBlob(candidate, cutoff, at(late))]);
      expect(outcomes.sort()).to.deep.equal(['delete', 'waiting']);
      expect((await one.gc.blobState(candidate.digest))?.deletingSince?.getTime(), 'the taker restarts the clock').to.equal(late);
      // The original holder wakes up: its finish must not end the taker's deletion.
      await one.gc.finishBlob(candidate, new Date(t0));
      expect((await one.gc.blobState(candidate.digest))?.state).to.equal('deleting');
      await two.gc.finishBlob(candidate, new Date(late));
      expect((await one.gc.blobState(candidate.digest))?.state).to.equal('deleted');
    });

    it('still rescues a blob a fresh push re-linked while it was being deleted, and clears the marker', async function () {
      const candidate = await onlyCandidate();
      expect(await one.gc.sweepBlob(candidate, cutoff, at(t0))).to.equal('delete');
      // The hold deleted the bytes; a push published them again and re-linked the blob.
      await new Promise((resolve) => setTimeout(resolve, 5));
      await two.linkBlob('alice/other', { digest: candidate.digest, size: candidate.size }, { fresh: true });
      expect(await two.gc.blobState(candidate.digest)).to.deep.equal({ state: 'live' });
      expect(await two.gc.sweepBlob(candidate, cutoff, at(t0 + 20 * MINUTE))).to.equal('rescued');
      // The old holder finishing late must not tombstone the revived blob.
      await one.gc.finishBlob(candidate, new Date(t0));
      expect(await one.getBlob('alice/other', candidate.digest)).to.deep.include({ digest: candidate.digest });
      expect(await collect(one.gc.candidates('blob'))).to.deep.equal([]);
    });

    /** A storage driver that counts releases; `failing` makes the next ones throw. */
    function countingStorage() {
      const released: string[] = [];
      const state = { failing: false };
      const storage: StorageDriver = {
        blobStore: () =>
          ({
            release: async (blob: string) => {
              await new Promise((resolve) => setTimeout(resolve, 20));
              if (state.failing) throw new Error('hold unavailable');
              released.push(blob);
              return true;
            },
          }) as unknown as BlobStore,
        close: async () => {},
      };
      return { storage, released, state };
    }

    it('releases each blob once when two registries run passes at the same time', async function () {
      for (let n = 0; n < 10; n++) await one.linkBlob('alice/app', { digest: digest(n), size: 1 });
      const { storage, released } = countingStorage();
      const now = () => new Date(Date.now() + MINUTE);
      const passes = [one, rival()].map((store) => new GarbageCollector({ store: store.gc, storage, did: 'did:plc:gc', graceSeconds: 0, now }));
      await passes[0]?.run();
      // Marked by the first pass; both sweep them now.
      for (let n = 10; n < 20; n++) await one.linkBlob('alice/app', { digest: digest(n), size: 1 });
      await Promise.all(passes.map((pass) => pass.run()));
      expect(released.toSorted()).to.deep.equal(Array.from({ length: 20 }, (_, n) => digest(n)));
    });

    it('releases up to releaseConcurrency blobs at once, and every one of them (30 candidates, 4 at once)', async function () {
      for (let n = 0; n < 30; n++) await one.linkBlob('alice/app', { digest: digest(n), size: 1 });
      const released: string[] = [];
      let inFlight = 0;
      let most = 0;
      const storage: StorageDriver = {
        blobStore: () =>
          ({
            release: async (blob: string) => {
              most = Math.max(most, ++inFlight);
              await new Promise((resolve) => setTimeout(resolve, 20));
              inFlight--;
              released.push(blob);
              return true;
            },
          }) as unknown as BlobStore,
        close: async () => {},
      };
      const report = await new GarbageCollector({ store: one.gc, storage, did: 'did:plc:gc', graceSeconds: 0, releaseConcurrency: 4, now: () => new Date(Date.now() + MINUTE) }).run();
      expect(report.deletedBlobs).to.equal(30);
      expect(released.toSorted()).to.deep.equal(Array.from({ length: 30 }, (_, n) => digest(n)));
      expect(most).to.equal(4);
      expect(await collect(one.gc.candidates('blob'))).to.deep.equal([]);
    });

    it('two passes marking the same new candidates at once both succeed, each candidate marked once', async function () {
      for (let round = 0; round < 20; round++) {
        for (let n = 0; n < 50; n++) await one.linkBlob('alice/app', { digest: digest(round * 100 + n), size: 1 });
        const now = new Date(Date.now() + MINUTE);
        const [first, second] = await Promise.all([one.gc.review('blob', now), rival().gc.review('blob', now)]);
        expect(first.marked + second.marked, `round ${round}`).to.equal(50);
      }
      expect(await collect(one.gc.candidates('blob'))).to.have.length(1000);
    });

    it('retries a release that failed only in a pass after the deletion timeout', async function () {
      await one.linkBlob('alice/app', { digest: digest(1), size: 1 });
      const { storage, released, state } = countingStorage();
      let offset = MINUTE;
      const collector = new GarbageCollector({ store: one.gc, storage, did: 'did:plc:gc', graceSeconds: 0, deletingTimeoutSeconds: 600, now: () => new Date(Date.now() + offset) });
      state.failing = true;
      expect((await collector.run()).items.map((item) => item.action)).to.deep.equal(['failed']);
      state.failing = false;
      offset += 5 * MINUTE;
      expect((await collector.run()).items.map((item) => item.action)).to.deep.equal(['waiting']);
      offset += 6 * MINUTE;
      expect((await collector.run()).items.map((item) => item.action)).to.deep.equal(['deleted']);
      expect(released).to.deep.equal([digest(1)]);
    });
  });
}
