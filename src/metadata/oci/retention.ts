import type { Db } from '../db.ts';
import { lockIfUnreferenced } from './gc.ts';

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

  constructor(db: Db) {
    this.#db = db;
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

  /** Deletes the tag if it still points where it did, pushed when it was. */
  async deleteTag(repository: string, tag: TagRow): Promise<boolean> {
    return (await this.#db.run('DELETE FROM tags WHERE repository = ? AND tag = ? AND digest = ? AND updated_at = ?', [repository, tag.tag, tag.digest, tag.updatedAt])) > 0;
  }

  /**
   * Deletes the manifest if it was not pushed again since `createdAt` and
   * nothing references it: no tag, no index, no subject that still exists.
   */
  async deleteManifest(repository: string, manifest: ManifestRow): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const row = await lockIfUnreferenced(tx, repository, manifest.digest);
      if (row?.created_at !== manifest.createdAt) return false;
      await tx.run('DELETE FROM manifests WHERE repository = ? AND digest = ?', [repository, manifest.digest]);
      await tx.run('DELETE FROM manifest_references WHERE repository = ? AND digest = ?', [repository, manifest.digest]);
      await tx.run("DELETE FROM gc_candidates WHERE kind = 'manifest' AND repository = ? AND digest = ?", [repository, manifest.digest]);
      return true;
    });
  }
}
