import type { Db } from '../db.ts';
import { lockIfUnreferenced } from './gc.ts';
import { orphanedBy, queueForReview } from './gc-review.ts';
import { countTags } from './tag-count.ts';
import type { ChangeListener } from './types.ts';

export interface TagRow {
  tag: string;
  digest: string;
  /** When the tag was last pointed (its push). */
  updatedAt: string;
}

export interface ManifestRow {
  digest: string;
  size: number;
  subject?: string;
  /** When the manifest was last pushed. */
  createdAt: string;
}

/** One repository as retention sees it: tags, manifests, and which manifests each index lists. */
export interface RepositorySnapshot {
  tags: TagRow[];
  manifests: ManifestRow[];
  children: { parent: string; child: string }[];
}

/**
 * Retention's reads and deletes. A pass reads a snapshot, decides, then
 * deletes each item only if it is still as it was read, so a push that
 * landed in between (a tag moved, a manifest pushed again or newly listed by
 * an index) keeps what it pushed.
 */
export class RetentionStore {
  readonly #db: Db;
  readonly #changed: ChangeListener;

  constructor(db: Db, changed: ChangeListener = async () => {}) {
    this.#db = db;
    this.#changed = changed;
  }

  async snapshot(repository: string): Promise<RepositorySnapshot> {
    const tags = await this.#db.all<{ tag: string; digest: string; updated_at: string }>('SELECT tag, digest, updated_at FROM tags WHERE repository = ?', [repository]);
    const manifests = await this.#db.all<{ digest: string; size: number | string; subject: string | null; created_at: string }>(
      'SELECT digest, size, subject, created_at FROM manifests WHERE repository = ?',
      [repository],
    );
    const children = await this.#db.all<{ digest: string; child: string }>("SELECT digest, child FROM manifest_references WHERE repository = ? AND kind = 'manifest'", [repository]);
    return {
      tags: tags.map((row) => ({ tag: row.tag, digest: row.digest, updatedAt: row.updated_at })),
      manifests: manifests.map((row) => ({ digest: row.digest, size: Number(row.size), createdAt: row.created_at, ...(row.subject ? { subject: row.subject } : {}) })),
      children: children.map((row) => ({ parent: row.digest, child: row.child })),
    };
  }

  /** Deletes each tag that still points where it did, pushed when it was; resolves to the names deleted. */
  async deleteTags(repository: string, tags: readonly TagRow[]): Promise<Set<string>> {
    const deleted = new Set<string>();
    for (let start = 0; start < tags.length; start += BATCH) {
      const batch = tags.slice(start, start + BATCH);
      const rows = await this.#db.transaction(async (tx) => {
        const gone = await tx.all<{ tag: string; digest: string }>(
          // `tag IN` lets SQLite find the rows by the primary key; the row values then check each as read.
          `DELETE FROM tags WHERE repository = ? AND tag IN (${batch.map(() => '?').join(', ')}) AND (tag, digest, updated_at) IN (VALUES ${batch.map(() => '(?, ?, ?)').join(', ')}) RETURNING tag, digest`,
          [repository, ...batch.map((tag) => tag.tag), ...batch.flatMap((tag) => [tag.tag, tag.digest, tag.updatedAt])],
        );
        gone.sort((a, b) => (a.tag < b.tag ? -1 : 1));
        if (gone.length > 0) await countTags(tx, repository, -gone.length);
        await this.#changed(tx, gone.map((row) => ({ kind: 'tag.deleted', repository, tag: row.tag, digest: row.digest })), { reason: 'retention' });
        await queueForReview(tx, gone.map((row) => ({ kind: 'manifest', repository, digest: row.digest })));
        return gone;
      });
      for (const row of rows) deleted.add(row.tag);
    }
    return deleted;
  }

  /**
   * Deletes each manifest that was not pushed again since `createdAt` and
   * that nothing references: no tag, no index, no subject that still exists.
   * None of `manifests` may hold another of them (the caller deletes an
   * index before what it lists). Resolves to the digests deleted.
   */
  async deleteManifests(repository: string, manifests: readonly ManifestRow[]): Promise<Set<string>> {
    const deleted = new Set<string>();
    const sorted = [...manifests].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    for (let start = 0; start < sorted.length; start += BATCH) {
      const batch = sorted.slice(start, start + BATCH);
      const planned = new Map(batch.map((manifest) => [manifest.digest, manifest.createdAt]));
      await this.#db.transaction(async (tx) => {
        const unreferenced = await lockIfUnreferenced(tx, repository, [...planned.keys()]);
        const doomed = unreferenced.filter((row) => planned.get(row.digest) === row.created_at).map((row) => row.digest);
        if (doomed.length === 0) return;
        const list = doomed.map(() => '?').join(', ');
        const orphans = await orphanedBy(tx, repository, doomed);
        await tx.run(`DELETE FROM manifests WHERE repository = ? AND digest IN (${list})`, [repository, ...doomed]);
        await tx.run(`DELETE FROM manifest_references WHERE repository = ? AND digest IN (${list})`, [repository, ...doomed]);
        await tx.run(`DELETE FROM gc_candidates WHERE kind = 'manifest' AND repository = ? AND digest IN (${list})`, [repository, ...doomed]);
        await this.#changed(tx, doomed.map((digest) => ({ kind: 'manifest.deleted', repository, digest, tags: [] })), { reason: 'retention' });
        await queueForReview(tx, orphans);
        for (const digest of doomed) deleted.add(digest);
      });
    }
    return deleted;
  }
}

/** Rows per statement: a few hundred keeps each transaction short and its parameter list small. */
const BATCH = 200;
