import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/metadata/db.ts';
import { migrate, SchemaTooNewError } from '../../src/metadata/migrations.ts';
import { orphanedBy, queueForReview } from '../../src/metadata/oci/gc-review.ts';
import { SqlMetadataStore } from '../../src/metadata/oci/store.ts';
import { TagLimitError, type ManifestRecord } from '../../src/metadata/oci/types.ts';
import { collect } from '../support/collect.ts';
import { sharedPostgres } from '../support/global-fixtures.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const LATER = () => new Date(Date.now() + 60_000);

function manifest(repository: string, n: number, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return { repository, digest: digest(n), mediaType: 'application/vnd.oci.image.manifest.v1+json', content: Buffer.from(`{"n":${n}}`), blobs: [digest(1000 + n)], manifests: [], ...extra };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`what a GC pass reviews, and the tag count (${kind})`, function () {
    this.timeout(60_000);
    let store: SqlMetadataStore;
    let db: Db;
    let dir: string | undefined;
    let url: string | undefined;

    async function put(record: ManifestRecord, tag?: string, options: { maxTags?: number } = {}) {
      for (const blob of record.blobs) await store.linkBlob(record.repository, { digest: blob, size: 1 });
      await store.putManifest(record, tag, options);
    }
    /** Both kinds reviewed, manifests first, as a pass does. */
    async function review(now = new Date()) {
      const manifests = await store.gc.review('manifest', now);
      const blobs = await store.gc.review('blob', now);
      return { manifests, blobs };
    }
    const candidates = async () => [...(await collect(store.gc.candidates('manifest'))), ...(await collect(store.gc.candidates('blob')))].map((c) => `${c.kind} ${c.repository} ${c.digest}`);
    const tagCount = async (repository: string) => {
      const row = await db.get<{ counted: number | string; kept: number | string }>('SELECT (SELECT COUNT(*) FROM tags WHERE repository = ?) AS counted, tag_count AS kept FROM repositories WHERE name = ?', [repository, repository]);
      return { counted: Number(row?.counted), kept: Number(row?.kept) };
    };

    beforeEach(async function () {
      if (kind === 'sqlite') {
        dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-review-'));
        store = await SqlMetadataStore.open({ kind, path: path.join(dir, 'registry.db') });
        db = await openDatabase({ kind, path: path.join(dir, 'registry.db') });
      } else {
        url = await (await sharedPostgres()).createDatabase();
        store = await SqlMetadataStore.open({ kind, url });
        db = await openDatabase({ kind, url });
      }
    });
    afterEach(async function () {
      await db?.close();
      await store?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('checks what lost a reference since the last pass, not every row', async function () {
      await put(manifest('r/app', 1), 'keep');
      await put(manifest('r/app', 2), 'a');
      await put(manifest('r/app', 3), 'b');
      expect(await review(), 'the new blobs, each referenced').to.deep.equal({ manifests: { reviewed: 0, marked: 0 }, blobs: { reviewed: 3, marked: 0 } });
      // The rest of a large registry: 2,000 blobs that manifest 1 references, written without the registry's writes.
      for (let start = 0; start < 2000; start += 500) {
        const rows = Array.from({ length: 500 }, (_, i) => digest(100_000 + start + i));
        await db.run(`INSERT INTO blobs (digest, size, created_at) VALUES ${rows.map(() => "(?, 1, '2026-01-01')").join(', ')}`, rows);
        await db.run(`INSERT INTO manifest_references (repository, digest, child, kind) VALUES ${rows.map(() => "('r/app', ?, ?, 'blob')").join(', ')}`, rows.flatMap((row) => [digest(1), row]));
      }
      expect(await review(), 'nothing changed').to.deep.equal({ manifests: { reviewed: 0, marked: 0 }, blobs: { reviewed: 0, marked: 0 } });

      expect(await store.deleteTag('r/app', 'a')).to.equal(true);
      await put(manifest('r/app', 4), 'b');
      await put(manifest('r/app', 5));
      await put(manifest('r/app', 6, { subject: digest(4), blobs: [] }));
      expect(await review()).to.deep.equal({ manifests: { reviewed: 4, marked: 3 }, blobs: { reviewed: 2, marked: 0 } });
      expect(await candidates(), 'untagged, moved off, pushed by digest; the referrer keeps its subject').to.deep.equal([`manifest r/app ${digest(2)}`, `manifest r/app ${digest(3)}`, `manifest r/app ${digest(5)}`]);

      for (const candidate of await collect(store.gc.candidates('manifest'))) expect(await store.gc.sweepManifest(candidate, LATER())).to.equal('deleted');
      expect(await store.deleteManifest('r/app', digest(4))).to.equal(true);
      expect(await review(), "the deleted manifests' blobs, and the referrer of the deleted subject").to.deep.equal({
        manifests: { reviewed: 1, marked: 1 },
        blobs: { reviewed: 4, marked: 4 },
      });
      expect(await review(), 'nothing changed since').to.deep.equal({ manifests: { reviewed: 0, marked: 0 }, blobs: { reviewed: 0, marked: 0 } });
    });

    it('a rescued candidate is checked again by the next pass', async function () {
      await put(manifest('r/app', 1));
      await review(new Date(Date.now() - 60_000));
      const [candidate] = await collect(store.gc.candidates('manifest'));
      await put(manifest('r/app', 1), undefined);
      expect(await store.gc.sweepManifest(candidate as NonNullable<typeof candidate>, LATER()), 'pushed again after it was marked').to.equal('rescued');
      expect(await candidates()).to.deep.equal([]);
      expect((await review()).manifests, 'still untagged: marked afresh').to.deep.equal({ reviewed: 1, marked: 1 });
    });

    it('keeps each tag count equal to the tags, and the limit exact when pushes race', async function () {
      await put(manifest('r/app', 1), 'a');
      await put(manifest('r/app', 1), 'b');
      await put(manifest('r/app', 2), 'b');
      await put(manifest('r/app', 2), 'b');
      await put(manifest('r/app', 3), 'c');
      await put(manifest('r/app', 3), 'd');
      expect(await tagCount('r/app')).to.deep.equal({ counted: 4, kept: 4 });
      await store.deleteTag('r/app', 'a');
      await store.deleteTag('r/app', 'a');
      await store.deleteManifest('r/app', digest(3));
      expect(await tagCount('r/app')).to.deep.equal({ counted: 1, kept: 1 });
      await put(manifest('r/app', 5), 'e');
      const snapshot = await store.retention.snapshot('r/app');
      await store.retention.deleteTags('r/app', snapshot.tags);
      expect(await tagCount('r/app')).to.deep.equal({ counted: 0, kept: 0 });

      await put(manifest('r/app', 7), 'x');
      const pushes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.putManifest(manifest('r/app', 7), `t${i}`, { maxTags: 4 })));
      expect(pushes.filter((push) => push.status === 'fulfilled')).to.have.length(3);
      expect(pushes.filter((push) => push.status === 'rejected').every((push) => (push as PromiseRejectedResult).reason instanceof TagLimitError)).to.equal(true);
      expect(await tagCount('r/app')).to.deep.equal({ counted: 4, kept: 4 });
    });

    it('keeps stored bytes per DID equal to the live blobs through every state change', async function () {
      const summed = async () =>
        (await db.all<{ did: string; bytes: number | string }>("SELECT COALESCE(did, '') AS did, SUM(size) AS bytes FROM blobs WHERE state = 'live' GROUP BY COALESCE(did, '') ORDER BY 1")).map((row) => ({ did: row.did, bytes: Number(row.bytes) }));
      const expectInStep = async (what: string) => expect(await store.gc.bytesByDid(), what).to.deep.equal(await summed());
      await store.linkBlob('r/app', { digest: digest(1), size: 10 }, { did: 'did:plc:a' });
      await store.linkBlob('r/other', { digest: digest(1), size: 10 }, { did: 'did:plc:b' });
      await store.recordBlob({ digest: digest(2), size: 200 }, 'did:plc:b', true);
      await store.recordBlob({ digest: digest(2), size: 200 }, 'did:plc:b', true);
      await store.linkBlob('r/app', { digest: digest(3), size: 3000 });
      await expectInStep('pushed');
      await store.gc.review('blob', new Date());
      const [one, two] = await collect(store.gc.candidates('blob'));
      const pass = { now: new Date(), staleBefore: new Date(0) };
      expect(await store.gc.sweepBlob(one as NonNullable<typeof one>, new Date(), pass)).to.equal('delete');
      expect(await store.gc.sweepBlob(two as NonNullable<typeof two>, new Date(), pass)).to.equal('delete');
      await expectInStep('two being deleted');
      await store.gc.finishBlob(one as NonNullable<typeof one>, pass.now);
      await expectInStep('one deleted');
      await store.linkBlob('r/app', { digest: digest(1), size: 10 }, { fresh: true, did: 'did:plc:c' });
      await store.linkBlob('r/app', { digest: digest(2), size: 200 }, { fresh: true });
      await expectInStep('both back');
      expect(await store.gc.bytesByDid()).to.deep.equal([
        { did: '', bytes: 3000 },
        { did: 'did:plc:a', bytes: 10 },
        { did: 'did:plc:b', bytes: 200 },
      ]);
    });

    it('an upgraded database counts its tags and queues every row once', async function () {
      await put(manifest('r/app', 1), 'a');
      await put(manifest('r/app', 2));
      await db.run('DROP TABLE gc_review');
      await db.run('DROP TABLE blob_usage');
      await db.run('ALTER TABLE repositories DROP COLUMN tag_count');
      await db.run('DELETE FROM schema_migrations WHERE version = 16');
      expect(await migrate(db)).to.equal(1);
      expect(await tagCount('r/app')).to.deep.equal({ counted: 1, kept: 1 });
      expect(await store.gc.bytesByDid()).to.deep.equal([{ did: '', bytes: 2 }]);
      expect(await review()).to.deep.equal({ manifests: { reviewed: 2, marked: 1 }, blobs: { reviewed: 2, marked: 0 } });
    });

    it('refuses a database a newer Holdfast migrated, changing nothing', async function () {
      await db.run("INSERT INTO schema_migrations (version, applied_at) VALUES (999, '2027-01-01')");
      await migrate(db).then(
        () => expect.fail('migrated a newer schema'),
        (err: unknown) => expect(err).to.be.instanceOf(SchemaTooNewError).and.have.property('message').that.includes('schema version 999'),
      );
    });

    it('an entry that left the queue and came back starts at a generation a pass cannot have read', async function () {
      const entry = { kind: 'manifest' as const, repository: 'r/app', digest: digest(1) };
      const generations = new Set<string>();
      for (let round = 0; round < 20; round++) {
        await db.transaction((tx) => queueForReview(tx, [entry]));
        generations.add(String((await db.get<{ gen: number | string }>('SELECT gen FROM gc_review'))?.gen));
        await db.run('DELETE FROM gc_review');
      }
      expect(generations.size).to.equal(20);
    });

    if (kind === 'postgres') {
      it('an entry queued again while a pass checks it stays queued for the next pass', async function () {
        await put(manifest('r/app', 1));
        await store.putManifest(manifest('r/app', 1), 'a');
        let commit!: () => void;
        const committing = new Promise<void>((resolve) => (commit = resolve));
        let queued!: () => void;
        const hasQueued = new Promise<void>((resolve) => (queued = resolve));
        // A tag delete in flight: it has queued the manifest again (locking its queue row) but not committed.
        const deleting = db.transaction(async (tx) => {
          await tx.run("DELETE FROM tags WHERE repository = 'r/app' AND tag = 'a'");
          await queueForReview(tx, [{ kind: 'manifest', repository: 'r/app', digest: digest(1) }]);
          queued();
          await committing;
        });
        await hasQueued;
        const reviewing = store.gc.review('manifest', new Date());
        await new Promise((resolve) => setTimeout(resolve, 300));
        commit();
        await deleting;
        expect(await reviewing, 'the tag was still there when it looked').to.deep.equal({ reviewed: 1, marked: 0 });
        expect(await store.gc.review('manifest', new Date())).to.deep.equal({ reviewed: 1, marked: 1 });
      });

      it('a referrer pushed while its subject is being deleted is collected once the subject is gone', async function () {
        await put(manifest('r/app', 1), 'subject');
        let commit!: () => void;
        const committing = new Promise<void>((resolve) => (commit = resolve));
        let deleted!: () => void;
        const hasDeleted = new Promise<void>((resolve) => (deleted = resolve));
        // The subject's delete, as deleteManifest does it, holding its transaction open after reading the referrers.
        const deleting = db.transaction(async (tx) => {
          await tx.run("DELETE FROM manifests WHERE repository = 'r/app' AND digest = ?", [digest(1)]);
          const orphans = await orphanedBy(tx, 'r/app', [digest(1)]);
          await tx.run("DELETE FROM manifest_references WHERE repository = 'r/app' AND digest = ?", [digest(1)]);
          await tx.run("DELETE FROM tags WHERE repository = 'r/app' AND digest = ?", [digest(1)]);
          deleted();
          await committing;
          await queueForReview(tx, orphans);
        });
        await hasDeleted;
        const pushing = store.putManifest(manifest('r/app', 2, { subject: digest(1), blobs: [] }));
        await new Promise((resolve) => setTimeout(resolve, 300));
        await store.gc.review('manifest', new Date());
        commit();
        await deleting;
        await pushing;
        expect((await store.gc.review('manifest', new Date())).marked, 'the referrer of a deleted subject').to.equal(1);
      });
    }
  });
}
