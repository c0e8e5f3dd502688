import { forUpdate, openDatabase, type DatabaseConfig, type Db } from '../db.ts';
import { BrowseStore } from './browse.ts';
import { walkRepositories, type CatalogFilter } from './catalog-walk.ts';
import { countUsage } from './blob-usage.ts';
import { GcStore } from './gc.ts';
import { orphanedBy, queueForReview, type ReviewEntry } from './gc-review.ts';
import { countTags } from './tag-count.ts';
import { inNamespace, namespaceRange } from './namespace.ts';
import { recountTotals, type RecountReport } from './recount.ts';
import { RetentionStore } from './retention.ts';
import { UploadHolds } from './upload-holds.ts';
import { BlobUnavailableError, ImmutableTagError, MissingBlobError, TagLimitError, type BlobRecord, type ChangeCause, type ChangeListener, type ManifestRecord, type MetadataStore, type Page, type ReferrerDescriptor, type TagPredicate, type UploadRow } from './types.ts';

/** The metadata store over either SQL dialect. */
export class SqlMetadataStore implements MetadataStore {
  readonly #db: Db;
  /** Garbage-collection queries, in the same database. */
  readonly gc: GcStore;
  readonly uploadHolds: UploadHolds;
  /** Retention's reads and conditional deletes. */
  readonly retention: RetentionStore;
  /** The web pages' reads. */
  readonly browse: BrowseStore;

  readonly #changed: ChangeListener;

  /** `changed` hears every change to tags and manifests inside its transaction (the events outbox). */
  constructor(db: Db, changed: ChangeListener = async () => {}) {
    this.#db = db;
    this.#changed = changed;
    this.gc = new GcStore(db, changed);
    this.uploadHolds = new UploadHolds(db);
    this.retention = new RetentionStore(db, changed);
    this.browse = new BrowseStore(db);
  }

  static async open(config: DatabaseConfig, changed?: ChangeListener): Promise<SqlMetadataStore> {
    return new SqlMetadataStore(await openDatabase(config), changed);
  }

  async createUpload(upload: UploadRow, options: { dropOlderThan?: Date } = {}): Promise<void> {
    await this.#db.transaction(async (tx) => {
      // Sessions nobody finished are forgotten when their DID opens another, so the table holds a bounded number per DID.
      if (options.dropOlderThan) await tx.run('DELETE FROM uploads WHERE did = ? AND created_at < ?', [upload.did, options.dropOlderThan.toISOString()]);
      await tx.run('INSERT INTO uploads (id, repository, did, created_at, state) VALUES (?, ?, ?, ?, ?)', [
        upload.id,
        upload.repository,
        upload.did,
        upload.createdAt.toISOString(),
        upload.state ?? null,
      ]);
    });
  }

  async countUploads(did: string, since: Date): Promise<number> {
    const row = await this.#db.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM uploads WHERE did = ? AND created_at > ?', [did, since.toISOString()]);
    return Number(row?.count ?? 0);
  }

  async getUpload(repository: string, id: string): Promise<UploadRow | undefined> {
    const row = await this.#db.get<{ id: string; repository: string; did: string; created_at: string; state: string | null }>(
      'SELECT id, repository, did, created_at, state FROM uploads WHERE id = ? AND repository = ?',
      [id, repository],
    );
    if (!row) return undefined;
    return { id: row.id, repository: row.repository, did: row.did, createdAt: new Date(row.created_at), ...(row.state !== null ? { state: row.state } : {}) };
  }

  async deleteUpload(id: string): Promise<void> {
    await this.#db.run('DELETE FROM uploads WHERE id = ?', [id]);
  }

  async linkBlob(repository: string, blob: BlobRecord, options: { fresh?: boolean; did?: string } = {}): Promise<boolean> {
    const now = new Date().toISOString();
    return this.#db.transaction(async (tx) => {
      await ensureRepository(tx, repository, now);
      const inserted = await tx.run('INSERT INTO blobs (digest, size, created_at, did) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING', [blob.digest, blob.size, now, options.did ?? null]);
      const row = await tx.get<{ state: string }>(`SELECT state FROM blobs WHERE digest = ?${forUpdate(tx)}`, [blob.digest]);
      const revived = row !== undefined && row.state !== 'live';
      if (revived) {
        if (!options.fresh) throw new BlobUnavailableError(blob.digest, row.state === 'deleting' ? 'deleting' : 'deleted');
        await tx.run("UPDATE blobs SET state = 'live', size = ?, deleting_since = NULL, generation = generation + 1 WHERE digest = ?", [blob.size, blob.digest]);
      }
      await tx.run(
        'INSERT INTO repository_blobs (repository, digest, created_at) VALUES (?, ?, ?) ON CONFLICT (repository, digest) DO UPDATE SET created_at = excluded.created_at',
        [repository, blob.digest, now],
      );
      // A blob new to the registry is unreferenced until a manifest lists it; one already live was reviewed when it last lost a reference.
      if (inserted > 0 || revived) {
        await countUsage(tx, blob.digest, 1);
        await queueForReview(tx, [{ kind: 'blob', repository: '', digest: blob.digest }]);
      }
      return revived;
    });
  }

  async namespaceBytes(namespace: string): Promise<number> {
    return (await this.browse.uniqueBytes(namespace)).bytes;
  }

  async linkedInNamespace(namespace: string, digest: string): Promise<boolean> {
    const row = await this.#db.get(`SELECT 1 AS one FROM repository_blobs rb WHERE rb.digest = ? AND ${inNamespace(this.#db, 'rb.repository')}`, [digest, ...namespaceRange(namespace)]);
    return row !== undefined;
  }

  async recordBlob(blob: BlobRecord, did: string, fresh: boolean): Promise<void> {
    await this.#db.transaction(async (tx) => {
      // Fresh bytes over a released blob's tombstone: live again (a new generation), so a pass finds and releases them.
      const written = await tx.run(
        `INSERT INTO blobs (digest, size, created_at, did) VALUES (?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET state = 'live', size = excluded.size, deleting_since = NULL, generation = blobs.generation + 1 WHERE blobs.state = 'deleted' AND ? = 1`,
        [blob.digest, blob.size, new Date().toISOString(), did, fresh ? 1 : 0],
      );
      if (written > 0) {
        await countUsage(tx, blob.digest, 1);
        await queueForReview(tx, [{ kind: 'blob', repository: '', digest: blob.digest }]);
      }
    });
  }

  async getBlob(repository: string, digest: string): Promise<BlobRecord | undefined> {
    const row = await this.#db.get<{ digest: string; size: number | string; generation: number | string }>(
      "SELECT b.digest, b.size, b.generation FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository = ? AND rb.digest = ? AND b.state = 'live'",
      [repository, digest],
    );
    return row ? { digest: row.digest, size: Number(row.size), generation: Number(row.generation) } : undefined;
  }

  async blobRepositories(digest: string): Promise<string[]> {
    const rows = await this.#db.all<{ repository: string }>(
      "SELECT rb.repository FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.digest = ? AND b.state = 'live' ORDER BY rb.repository",
      [digest],
    );
    return rows.map((row) => row.repository);
  }

  async unlinkBlob(repository: string, digest: string, options: { immutable?: TagPredicate } = {}): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      if (options.immutable) {
        const users = await tx.all<{ digest: string }>("SELECT digest FROM manifest_references WHERE repository = ? AND child = ? AND kind = 'blob'", [repository, digest]);
        for (const user of users) {
          const holder = await immutableHolder(tx, repository, user.digest, options.immutable);
          if (holder) throw new ImmutableTagError(repository, holder, user.digest, 'delete manifest');
        }
      }
      return (await tx.run('DELETE FROM repository_blobs WHERE repository = ? AND digest = ?', [repository, digest])) > 0;
    });
  }

  async putManifest(manifest: ManifestRecord, tag?: string, options: { maxTags?: number; immutable?: TagPredicate; cause?: ChangeCause } = {}): Promise<void> {
    const now = new Date().toISOString();
    await this.#db.transaction(async (tx) => {
      await ensureRepository(tx, manifest.repository, now);
      for (const digest of manifest.blobs) {
        const row = await tx.get<{ state: string }>(
          `SELECT b.state FROM blobs b JOIN repository_blobs rb ON rb.digest = b.digest WHERE rb.repository = ? AND b.digest = ?${forShare(tx)}`,
          [manifest.repository, digest],
        );
        if (row?.state !== 'live') throw new MissingBlobError(digest);
      }
      // Under a share lock, so retention cannot delete a child between the caller's check and this commit (in digest order, see
      // `lockIfUnreferenced`). The subject too, if stored (a referrer may come first): whoever deletes it then sees this
      // manifest among its referrers and queues it for GC.
      const children = new Set(manifest.manifests);
      for (const digest of [...new Set([...children, ...(manifest.subject ? [manifest.subject] : [])])].sort()) {
        const row = await tx.get(`SELECT 1 AS one FROM manifests WHERE repository = ? AND digest = ?${tx.dialect === 'postgres' ? ' FOR SHARE' : ''}`, [manifest.repository, digest]);
        if (!row && children.has(digest)) throw new MissingBlobError(digest, 'manifest');
      }
      await tx.run(
        `INSERT INTO manifests (repository, digest, media_type, content, size, subject, artifact_type, annotations, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO UPDATE SET created_at = excluded.created_at`,
        [
          manifest.repository,
          manifest.digest,
          manifest.mediaType,
          manifest.content,
          manifest.content.length,
          manifest.subject ?? null,
          manifest.artifactType ?? null,
          manifest.annotations ? JSON.stringify(manifest.annotations) : null,
          now,
        ],
      );
      const references = [...manifest.blobs.map((child) => ['blob', child]), ...manifest.manifests.map((child) => ['manifest', child])];
      for (const [kind, child] of references) {
        await tx.run('INSERT INTO manifest_references (repository, digest, child, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
          manifest.repository,
          manifest.digest,
          child as string,
          kind as string,
        ]);
      }
      const review: ReviewEntry[] = [];
      if (tag) {
        const moved = await writeTag(tx, manifest, tag, now, options);
        if (moved) review.push({ kind: 'manifest', repository: manifest.repository, digest: moved });
      } else {
        // Pushed by digest: kept only while a tag, an index or a subject holds it.
        review.push({ kind: 'manifest', repository: manifest.repository, digest: manifest.digest });
      }
      await this.#changed(
        tx,
        [
          {
            kind: 'manifest.pushed',
            repository: manifest.repository,
            digest: manifest.digest,
            mediaType: manifest.mediaType,
            size: manifest.content.length,
            ...(tag === undefined ? {} : { tag }),
            ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
            ...(manifest.subject ? { subject: manifest.subject } : {}),
          },
        ],
        options.cause ?? {},
      );
      await queueForReview(tx, review);
    });
  }

  async getManifest(repository: string, digest: string): Promise<ManifestRecord | undefined> {
    const row = await this.#db.get<{
      digest: string;
      media_type: string;
      content: Buffer | Uint8Array;
      subject: string | null;
      artifact_type: string | null;
      annotations: string | null;
    }>('SELECT digest, media_type, content, subject, artifact_type, annotations FROM manifests WHERE repository = ? AND digest = ?', [repository, digest]);
    if (!row) return undefined;
    const references = await this.#db.all<{ child: string; kind: string }>(
      'SELECT child, kind FROM manifest_references WHERE repository = ? AND digest = ?',
      [repository, digest],
    );
    return {
      repository,
      digest: row.digest,
      mediaType: row.media_type,
      content: Buffer.from(row.content),
      ...(row.subject ? { subject: row.subject } : {}),
      ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
      ...(row.annotations ? { annotations: JSON.parse(row.annotations) as Record<string, string> } : {}),
      blobs: references.filter((ref) => ref.kind === 'blob').map((ref) => ref.child),
      manifests: references.filter((ref) => ref.kind === 'manifest').map((ref) => ref.child),
    };
  }

  async resolveTag(repository: string, tag: string): Promise<string | undefined> {
    return (await this.#db.get<{ digest: string }>('SELECT digest FROM tags WHERE repository = ? AND tag = ?', [repository, tag]))?.digest;
  }

  async deleteManifest(repository: string, digest: string, options: { immutable?: TagPredicate; cause?: ChangeCause } = {}): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      if (options.immutable) {
        if (!(await tx.get(`SELECT 1 AS one FROM manifests WHERE repository = ? AND digest = ?${forUpdate(tx)}`, [repository, digest]))) return false;
        const holder = await immutableHolder(tx, repository, digest, options.immutable);
        if (holder) throw new ImmutableTagError(repository, holder, digest, 'delete manifest');
      }
      const removed = await tx.run('DELETE FROM manifests WHERE repository = ? AND digest = ?', [repository, digest]);
      if (removed === 0) return false;
      const orphans = await orphanedBy(tx, repository, [digest]);
      await tx.run('DELETE FROM manifest_references WHERE repository = ? AND digest = ?', [repository, digest]);
      const tags = await tx.all<{ tag: string }>('DELETE FROM tags WHERE repository = ? AND digest = ? RETURNING tag', [repository, digest]);
      if (tags.length > 0) await countTags(tx, repository, -tags.length);
      await this.#changed(tx, [{ kind: 'manifest.deleted', repository, digest, tags: tags.map((row) => row.tag).sort() }], options.cause ?? {});
      await queueForReview(tx, orphans);
      return true;
    });
  }

  async deleteTag(repository: string, tag: string, options: { immutable?: TagPredicate; cause?: ChangeCause } = {}): Promise<boolean> {
    if (options.immutable?.(tag)) {
      const held = await this.resolveTag(repository, tag);
      if (held) throw new ImmutableTagError(repository, tag, held, 'delete tag');
      return false;
    }
    return this.#db.transaction(async (tx) => {
      const row = await tx.get<{ digest: string }>('DELETE FROM tags WHERE repository = ? AND tag = ? RETURNING digest', [repository, tag]);
      if (!row) return false;
      await countTags(tx, repository, -1);
      await this.#changed(tx, [{ kind: 'tag.deleted', repository, tag, digest: row.digest }], options.cause ?? {});
      await queueForReview(tx, [{ kind: 'manifest', repository, digest: row.digest }]);
      return true;
    });
  }

  async listTags(repository: string, page: Page = {}): Promise<string[]> {
    const { clause, params } = pageClause(this.#db.dialect, 'tag', page);
    const rows = await this.#db.all<{ tag: string }>(`SELECT tag FROM tags WHERE repository = ?${clause}`, [repository, ...params]);
    return rows.map((row) => row.tag);
  }

  async listReferrers(repository: string, subject: string, artifactType?: string): Promise<ReferrerDescriptor[]> {
    const filter = artifactType ? ' AND artifact_type = ?' : '';
    const rows = await this.#db.all<{ digest: string; media_type: string; size: number | string; artifact_type: string | null; annotations: string | null }>(
      // `+digest` on SQLite: without statistics its planner walks the primary key for the order, reading the whole repository (browse.ts, #sortOnly).
      `SELECT digest, media_type, size, artifact_type, annotations FROM manifests WHERE repository = ? AND subject = ?${filter} ORDER BY ${this.#db.dialect === 'postgres' ? 'digest' : '+digest'}`,
      artifactType ? [repository, subject, artifactType] : [repository, subject],
    );
    return rows.map((row) => ({
      mediaType: row.media_type,
      digest: row.digest,
      size: Number(row.size),
      ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
      ...(row.annotations ? { annotations: JSON.parse(row.annotations) as Record<string, string> } : {}),
    }));
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return (await this.#db.get('SELECT name FROM repositories WHERE name = ?', [repository])) !== undefined;
  }

  /** Repository names in order, a page at a time; with `filter`, only those it shows. */
  async listRepositories(page: Page = {}, filter?: CatalogFilter): Promise<string[]> {
    if (filter) return walkRepositories(this.#db, filter, { ...(page.last !== undefined ? { after: page.last } : {}), limit: page.n ?? Number.POSITIVE_INFINITY });
    const { clause, params } = pageClause(this.#db.dialect, 'name', page, true);
    const rows = await this.#db.all<{ name: string }>(`SELECT name FROM repositories${clause}`, params);
    return rows.map((row) => row.name);
  }

  /** Checks the kept totals (tags per repository, stored bytes per DID) against the rows; `fix` writes the counted ones. */
  recount(options: { fix: boolean }): Promise<RecountReport> {
    return recountTotals(this.#db, options);
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

function forShare(db: Db): string {
  return db.dialect === 'postgres' ? ' FOR SHARE OF b' : '';
}

/**
 * An immutable tag that holds `digest`: one pointing at it, or at an index
 * that lists it (at any depth). Indexes rarely nest, so the walk is short;
 * past `MAX_HOLDER_WALK` manifests it stops and counts the manifest as held.
 */
async function immutableHolder(tx: Db, repository: string, digest: string, immutable: TagPredicate): Promise<string | undefined> {
  const seen = new Set([digest]);
  const queue = [digest];
  while (queue.length > 0) {
    // Past the bound, refuse rather than guess.
    if (seen.size > MAX_HOLDER_WALK) return `(one of more than ${MAX_HOLDER_WALK} indexes listing it)`;
    const current = queue.shift() as string;
    const tags = await tx.all<{ tag: string }>('SELECT tag FROM tags WHERE repository = ? AND digest = ?', [repository, current]);
    const held = tags.find((row) => immutable(row.tag));
    if (held) return held.tag;
    const parents = await tx.all<{ digest: string }>("SELECT digest FROM manifest_references WHERE repository = ? AND child = ? AND kind = 'manifest'", [repository, current]);
    for (const parent of parents) {
      if (!seen.has(parent.digest)) {
        seen.add(parent.digest);
        queue.push(parent.digest);
      }
    }
  }
  return undefined;
}

const MAX_HOLDER_WALK = 1000;

/**
 * Points `tag` at the manifest; resolves to the digest it pointed at before,
 * if that was another. A new tag is inserted first and counted: the count's
 * row lock makes the limit exact under concurrent pushes, and an existing tag
 * is locked before it is read, so the digest it leaves is the one it held.
 */
async function writeTag(tx: Db, manifest: ManifestRecord, tag: string, now: string, options: { maxTags?: number; immutable?: TagPredicate }): Promise<string | undefined> {
  const { repository, digest } = manifest;
  // A second round only if a concurrent delete removed the tag between the insert and the read.
  for (let round = 0; round < 2; round++) {
    if ((await tx.run('INSERT INTO tags (repository, tag, digest, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (repository, tag) DO NOTHING', [repository, tag, digest, now])) > 0) {
      const count = await countTags(tx, repository, 1);
      if (options.maxTags !== undefined && count > options.maxTags) throw new TagLimitError(options.maxTags);
      return undefined;
    }
    const held = await tx.get<{ digest: string }>(`SELECT digest FROM tags WHERE repository = ? AND tag = ?${forUpdate(tx)}`, [repository, tag]);
    if (!held) continue;
    const immutable = options.immutable?.(tag) === true;
    if (held.digest === digest) {
      if (!immutable) await tx.run('UPDATE tags SET updated_at = ? WHERE repository = ? AND tag = ?', [now, repository, tag]);
      return undefined;
    }
    // Of two first pushes racing for an immutable tag, the second waited for the first's insert above and is refused here.
    if (immutable) throw new ImmutableTagError(repository, tag, held.digest, 'move');
    await tx.run('UPDATE tags SET digest = ?, updated_at = ? WHERE repository = ? AND tag = ?', [digest, now, repository, tag]);
    return held.digest;
  }
  throw new Error(`tag ${tag} of ${repository} kept changing while it was written`);
}

async function ensureRepository(tx: Db, repository: string, now: string): Promise<void> {
  await tx.run('INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [repository, now]);
}

/** Lexical (byte-order) pagination: `last` excludes, `n` limits. */
function pageClause(dialect: Db['dialect'], column: string, page: Page, first = false): { clause: string; params: (string | number)[] } {
  const params: (string | number)[] = [];
  const ordered = dialect === 'postgres' ? `${column} COLLATE "C"` : column;
  let clause = '';
  if (page.last !== undefined) {
    clause += `${first ? ' WHERE' : ' AND'} ${ordered} > ?`;
    params.push(page.last);
  }
  clause += ` ORDER BY ${ordered}`;
  if (page.n !== undefined) {
    clause += ' LIMIT ?';
    params.push(page.n);
  }
  return { clause, params };
}
