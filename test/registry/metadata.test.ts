import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/metadata/db.ts';
import { SqlMetadataStore } from '../../src/metadata/oci/store.ts';
import type { ManifestRecord } from '../../src/metadata/oci/types.ts';
import { sharedPostgres } from '../support/global-fixtures.ts';
import { collect } from '../support/collect.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function manifest(repository: string, n: number, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return {
    repository,
    digest: digest(n),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    content: Buffer.from(`{"n":${n}}`),
    blobs: [digest(1000 + n)],
    manifests: [],
    ...extra,
  };
}

const KINDS = ['sqlite', 'postgres'] as const;

for (const kind of KINDS) {
  describe(`metadata store (${kind})`, function () {
    let store: SqlMetadataStore;
    let dir: string | undefined;
    let url: string | undefined;

    /** Manifests may only reference blobs linked in their repository. */
    async function putManifest(record: ManifestRecord, tag?: string) {
      for (const blob of record.blobs) await store.linkBlob(record.repository, { digest: blob, size: 1 });
      await store.putManifest(record, tag);
    }

    beforeEach(async function () {
      if (kind === 'sqlite') {
        dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-meta-'));
        store = await SqlMetadataStore.open({ kind, path: path.join(dir, 'registry.db') });
      } else {
        url = await (await sharedPostgres()).createDatabase();
        store = await SqlMetadataStore.open({ kind, url });
      }
    });
    afterEach(async function () {
      await store?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('links blobs per repository, idempotently', async function () {
      await store.linkBlob('a/one', { digest: digest(1), size: 10 });
      await store.linkBlob('a/one', { digest: digest(1), size: 10 });
      await store.linkBlob('b/two', { digest: digest(1), size: 10 });
      expect(await store.getBlob('a/one', digest(1))).to.deep.equal({ digest: digest(1), size: 10, generation: 0 });
      expect(await store.getBlob('c/three', digest(1))).to.equal(undefined);
      expect(await store.blobRepositories(digest(1))).to.deep.equal(['a/one', 'b/two']);
      expect(await store.unlinkBlob('a/one', digest(1))).to.equal(true);
      expect(await store.unlinkBlob('a/one', digest(1))).to.equal(false);
      expect(await store.getBlob('a/one', digest(1))).to.equal(undefined);
    });

    it('counts a blob generation up when it comes back after garbage collection, and only then', async function () {
      await store.linkBlob('a/one', { digest: digest(1), size: 10 });
      await store.gc.review('blob', new Date());
      const [candidate] = await collect(store.gc.candidates('blob'));
      if (!candidate) throw new Error('no candidate');
      const now = new Date(Date.now() + 60_000);
      expect(await store.gc.sweepBlob(candidate, now, { now, staleBefore: new Date(0) })).to.equal('delete');
      await store.gc.finishBlob(candidate, now);
      expect(await store.getBlob('a/one', digest(1))).to.equal(undefined);
      await store.linkBlob('b/two', { digest: digest(1), size: 10 }, { fresh: true });
      expect((await store.getBlob('b/two', digest(1)))?.generation, 'pushed again after the release').to.equal(1);
      await store.linkBlob('a/one', { digest: digest(1), size: 10 });
      expect((await store.getBlob('a/one', digest(1)))?.generation, 'a plain link').to.equal(1);
    });

    it('stores manifests with tags and references in one transaction, and deletes them', async function () {
      const record = manifest('a/one', 1, { annotations: { 'org.example': 'yes' } });
      await putManifest(record, 'latest');
      const read = await store.getManifest('a/one', digest(1));
      expect(read?.content.equals(record.content)).to.equal(true);
      expect(read?.blobs).to.deep.equal([digest(1001)]);
      expect(read?.annotations).to.deep.equal({ 'org.example': 'yes' });
      expect(await store.resolveTag('a/one', 'latest')).to.equal(digest(1));
      await putManifest(manifest('a/one', 2), 'latest');
      expect(await store.resolveTag('a/one', 'latest'), 'tags move').to.equal(digest(2));
      expect(await store.deleteManifest('a/one', digest(2))).to.equal(true);
      expect(await store.resolveTag('a/one', 'latest'), 'deleting a manifest removes its tags').to.equal(undefined);
      expect(await store.deleteManifest('a/one', digest(2))).to.equal(false);
      expect(await store.deleteTag('a/one', 'nope')).to.equal(false);
    });

    it('pages tags and repositories in byte order', async function () {
      for (const tag of ['b', 'a', 'B', 'c1', 'c10', 'c2']) await putManifest(manifest('r/x', tag.charCodeAt(0) + tag.length), tag);
      expect(await store.listTags('r/x')).to.deep.equal(['B', 'a', 'b', 'c1', 'c10', 'c2']);
      expect(await store.listTags('r/x', { n: 2 })).to.deep.equal(['B', 'a']);
      expect(await store.listTags('r/x', { n: 2, last: 'a' })).to.deep.equal(['b', 'c1']);
      expect(await store.listTags('r/x', { last: 'c2' })).to.deep.equal([]);
      await store.linkBlob('a/z', { digest: digest(9), size: 1 });
      expect(await store.listRepositories()).to.deep.equal(['a/z', 'r/x']);
      expect(await store.listRepositories({ n: 1, last: 'a/z' })).to.deep.equal(['r/x']);
      expect(await store.repositoryExists('r/x')).to.equal(true);
      expect(await store.repositoryExists('q/q')).to.equal(false);
    });

    it('refuses a manifest whose blob is not linked in its repository', async function () {
      const error = await store.putManifest(manifest('a/one', 77)).catch((err: unknown) => err);
      expect((error as Error).name).to.equal('MissingBlobError');
      expect(await store.getManifest('a/one', digest(77))).to.equal(undefined);
    });

    it('lists referrers by subject, filtered by artifact type', async function () {
      await putManifest(manifest('a/one', 1));
      await putManifest(manifest('a/one', 2, { subject: digest(1), artifactType: 'application/x-sbom' }));
      await putManifest(manifest('a/one', 3, { subject: digest(1), artifactType: 'application/x-sig' }));
      await putManifest(manifest('b/two', 4, { subject: digest(1), artifactType: 'application/x-sig' }));
      expect((await store.listReferrers('a/one', digest(1))).map((ref) => ref.digest)).to.deep.equal([digest(2), digest(3)]);
      const signatures = await store.listReferrers('a/one', digest(1), 'application/x-sig');
      expect(signatures).to.deep.equal([{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digest(3), size: 7, artifactType: 'application/x-sig' }]);
    });

    it('keeps upload sessions per repository', async function () {
      await store.createUpload({ id: 'u1', repository: 'a/one', did: 'did:plc:a', createdAt: new Date(0) });
      expect((await store.getUpload('a/one', 'u1'))?.did).to.equal('did:plc:a');
      expect(await store.getUpload('b/two', 'u1')).to.equal(undefined);
      await store.deleteUpload('u1');
      expect(await store.getUpload('a/one', 'u1')).to.equal(undefined);
    });

    it('forgets the sessions a DID abandoned when it opens another, and nobody else\'s', async function () {
      const day = (n: number) => new Date(Date.UTC(2026, 0, n));
      await store.createUpload({ id: 'old-a', repository: 'a/one', did: 'did:plc:a', createdAt: day(1) });
      await store.createUpload({ id: 'recent-a', repository: 'a/one', did: 'did:plc:a', createdAt: day(9) });
      await store.createUpload({ id: 'old-b', repository: 'a/one', did: 'did:plc:b', createdAt: day(1) });
      await store.createUpload({ id: 'new-a', repository: 'a/one', did: 'did:plc:a', createdAt: day(10) }, { dropOlderThan: day(3) });
      const left = await Promise.all(['old-a', 'recent-a', 'old-b', 'new-a'].map(async (id) => (await store.getUpload('a/one', id)) !== undefined));
      expect(left).to.deep.equal([false, true, true, true]);
    });

    it('lets one holder at a time take an upload, hands the state on, and lets a lapsed lease be taken over', async function () {
      const holds = store.uploadHolds;
      await store.createUpload({ id: 'u2', repository: 'a/one', did: 'did:plc:a', createdAt: new Date(0), state: 'created' });
      expect(await holds.take('nope', 'x', 60_000)).to.equal('unknown');
      const first = await holds.take('u2', 'one', 60_000);
      expect(first).to.deep.equal({ epoch: 1, tookOver: false, state: 'created' });
      expect(await holds.take('u2', 'two', 60_000), 'held').to.equal('busy');
      expect(await holds.renew('u2', 'two', 1, 60_000), 'only the holder renews').to.equal(false);
      expect(await holds.renew('u2', 'one', 1, 60_000)).to.equal(true);
      expect(await holds.release('u2', 'one', 1, 'after-one')).to.equal(true);
      expect(await holds.release('u2', 'one', 1, 'again'), 'released once').to.equal(false);
      expect(await holds.take('u2', 'two', 1)).to.deep.equal({ epoch: 2, tookOver: false, state: 'after-one' });
      await new Promise((resolve) => setTimeout(resolve, 30));
      // Its holder let the lease lapse: another takes the upload over, and the first can no longer renew or release it.
      expect(await holds.take('u2', 'three', 60_000)).to.deep.equal({ epoch: 3, tookOver: true });
      expect(await holds.renew('u2', 'two', 2, 60_000)).to.equal(false);
      expect(await holds.release('u2', 'two', 2, 'stale')).to.equal(false);
      const taken = await Promise.all(['a', 'b', 'c', 'd'].map(() => holds.release('u2', 'three', 3, undefined).then(() => holds.take('u2', 'racer', 60_000))));
      expect(taken.filter((outcome) => outcome !== 'busy'), 'one of four racing takes wins').to.have.length(1);
    });

    it('survives concurrent writers to one repository', async function () {
      await Promise.all(
        Array.from({ length: 40 }, (_, n) =>
          n % 2 === 0 ? store.linkBlob('c/c', { digest: digest(n), size: n }) : putManifest(manifest('c/c', n), `t${n}`),
        ),
      );
      expect(await store.listTags('c/c')).to.have.length(20);
      expect(await store.blobRepositories(digest(0))).to.deep.equal(['c/c']);
    });

    it('recount: reports kept totals that drifted from their rows and changes nothing; with fix writes the counted ones', async function () {
      await store.linkBlob('d/one', { digest: digest(1), size: 10 }, { did: 'did:plc:dora' });
      await store.linkBlob('d/one', { digest: digest(2), size: 5 });
      for (const n of [3, 4]) await putManifest(manifest('d/one', n), `t${n}`);
      await putManifest(manifest('d/two', 5), 't5');
      const clean = { tagCounts: { drifted: 0, items: [] }, storedBytes: { drifted: 0, items: [] } };
      expect(await store.recount({ fix: false })).to.deep.equal({ ...clean, fixed: false });
      // As an instance that did not keep them (older than schema 16) would leave them.
      const db = kind === 'sqlite' ? await openDatabase({ kind, path: path.join(dir as string, 'registry.db') }) : await openDatabase({ kind, url: url as string });
      await db.run("UPDATE repositories SET tag_count = 7 WHERE name = 'd/one'");
      await db.run("UPDATE blob_usage SET bytes = 3 WHERE did = 'did:plc:dora'");
      await db.run("DELETE FROM blob_usage WHERE did = ''");
      await db.close();
      const drift = {
        tagCounts: { drifted: 1, items: [{ repository: 'd/one', recorded: 7, counted: 2 }] },
        storedBytes: {
          drifted: 2,
          items: [
            // Blobs pushed without a DID: 5 bytes, and the three 1-byte layers `putManifest` links.
            { did: '', recorded: 0, counted: 8 },
            { did: 'did:plc:dora', recorded: 3, counted: 10 },
          ],
        },
      };
      expect(await store.recount({ fix: false })).to.deep.equal({ ...drift, fixed: false });
      expect(await store.recount({ fix: true })).to.deep.equal({ ...drift, fixed: true });
      expect(await store.recount({ fix: false })).to.deep.equal({ ...clean, fixed: false });
    });

    /**
     * An index PUT that has share-locked its child and written its reference,
     * not yet committed, while retention or a GC sweep deletes that child:
     * the delete waits for the lock, and must then see the reference.
     * (SQLite runs one transaction at a time, so only Postgres can interleave.)
     */
    async function whileAnIndexIsBeingStored(child: string, remove: () => Promise<unknown>): Promise<unknown> {
      const db = await openDatabase({ kind: 'postgres', url: url as string });
      let commit!: () => void;
      const committing = new Promise<void>((resolve) => (commit = resolve));
      let locked!: () => void;
      const hasLock = new Promise<void>((resolve) => (locked = resolve));
      const storing = db.transaction(async (tx) => {
        await tx.get('SELECT 1 AS one FROM manifests WHERE repository = ? AND digest = ? FOR SHARE', ['r/idx', child]);
        await tx.run("INSERT INTO manifest_references (repository, digest, child, kind) VALUES (?, ?, ?, 'manifest')", ['r/idx', digest(99), child]);
        locked();
        await committing;
      });
      await hasLock;
      const removing = remove();
      await new Promise((resolve) => setTimeout(resolve, 300));
      commit();
      await storing;
      await db.close();
      return removing;
    }

    if (kind === 'postgres') {
      it('retention does not delete a manifest an index being stored lists', async function () {
        await putManifest(manifest('r/idx', 1));
        const row = (await store.retention.snapshot('r/idx')).manifests[0];
        expect(await whileAnIndexIsBeingStored(digest(1), () => store.retention.deleteManifests('r/idx', [row as NonNullable<typeof row>]))).to.deep.equal(new Set());
        expect(await store.getManifest('r/idx', digest(1))).to.not.equal(undefined);
      });

      it('a GC sweep does not delete a manifest an index being stored lists', async function () {
        await putManifest(manifest('r/idx', 1));
        await store.gc.review('manifest', new Date(Date.now() + 1000));
        const [candidate] = await collect(store.gc.candidates('manifest'));
        expect(await whileAnIndexIsBeingStored(digest(1), () => store.gc.sweepManifest(candidate as NonNullable<typeof candidate>, new Date(Date.now() + 60_000)))).to.equal('rescued');
        expect(await store.getManifest('r/idx', digest(1))).to.not.equal(undefined);
      });
    }
  });
}
