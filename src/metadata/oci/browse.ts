import type { Db } from '../db.ts';
import { walkRepositories, type CatalogFilter } from './catalog-walk.ts';
import { inNamespace, namespaceRange } from './namespace.ts';

/**
 * Read-only queries for the web pages. Each reads one page of rows through an
 * index (keyset paging, never OFFSET), so a page costs the same with ten tags
 * or a million. Nothing here walks manifests: sizes are sums over the
 * reference rows of the manifests on the page.
 */
export interface TagRow {
  tag: string;
  digest: string;
  pushedAt: string;
  mediaType: string;
  artifactType?: string;
}

export interface TagSearchHit {
  repository: string;
  tag: string;
  digest: string;
  pushedAt: string;
}

export type TagOrder = 'name' | 'pushed';

export interface RepositoryUsage {
  repository: string;
  blobs: number;
  bytes: number;
}

/** One platform of an image index, with what its manifest's blobs add up to. */
export interface PlatformEntry {
  digest: string;
  mediaType: string;
  os?: string;
  architecture?: string;
  variant?: string;
  /** Undefined when the child is an artifact, not an image (attestation manifests in buildx indexes). */
  bytes?: number;
}

export interface ManifestSummary {
  digest: string;
  mediaType: string;
  /** The blobs the manifest (or, for an index, its children) lists, each counted once; unset for an index too large to sum. */
  bytes?: number;
  /** Manifests an index lists (0 for an image). */
  children: number;
  /** An index's platforms, unless it is too large to summarise. */
  platforms?: PlatformEntry[];
}

/** An index summarised on a page of tags lists at most this many manifests… */
export const MAX_SUMMARY_PLATFORMS = 64;
/** …in at most this many bytes. */
export const MAX_SUMMARY_INDEX_BYTES = 32 * 1024;

/** Keyset cursors are opaque to callers; this one is `pushedAt` and tag for `pushed`, the tag for `name`. */
export interface TagCursor {
  tag: string;
  pushedAt?: string;
}

/**
 * Tags a search reads at most, shown or hidden: past it, the hits found so
 * far are the answer, so a search over many tags the viewer may not see
 * costs a bounded read.
 */
export const TAG_SEARCH_MAX_ROWS = 4096;

export class BrowseStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Repositories whose name contains `query` (all without one), bytewise after `after`; with `filter`, only those it shows. */
  async repositories(options: { query?: string; after?: string; limit: number; filter?: CatalogFilter }): Promise<string[]> {
    const { filter, query, ...page } = options;
    return walkRepositories(this.#db, filter, { ...page, ...(query ? { where: { sql: `name LIKE ? ESCAPE '\\'`, params: [`%${escapeLike(query)}%`] } } : {}) });
  }

  /** Tags in any repository whose name starts with `prefix`, by tag then repository; with `filter`, only in repositories it shows (of the first `TAG_SEARCH_MAX_ROWS` read). */
  async searchTags(options: { prefix: string; after?: { tag: string; repository: string }; limit: number; filter?: CatalogFilter }): Promise<TagSearchHit[]> {
    const tag = this.#bytewise('tag');
    const repository = this.#bytewise('repository');
    const hits: TagSearchHit[] = [];
    let after = options.after;
    let batch = options.limit;
    for (let read = 0; read < TAG_SEARCH_MAX_ROWS; ) {
      // One row-value bound, so each batch starts where the last ended in the (tag, repository) index instead of at the prefix.
      const [lower, lowerParams] = after ? [`(${tag}, ${repository}) > (?, ?)`, [after.tag, after.repository]] : [`${tag} >= ?`, [options.prefix]];
      const rows = await this.#db.all<{ repository: string; tag: string; digest: string; updated_at: string }>(
        `SELECT repository, tag, digest, updated_at FROM tags WHERE ${lower} AND ${tag} < ? ORDER BY ${tag}, ${repository} LIMIT ?`,
        [...lowerParams, `${options.prefix}\uffff`, batch],
      );
      read += rows.length;
      for (const row of rows) {
        if (options.filter && !options.filter.shows(row.repository)) continue;
        hits.push({ repository: row.repository, tag: row.tag, digest: row.digest, pushedAt: row.updated_at });
        if (hits.length === options.limit) return hits;
      }
      const last = rows.at(-1);
      if (!last || rows.length < batch) return hits;
      after = { tag: last.tag, repository: last.repository };
      batch = Math.min(batch * 2, 1024);
    }
    return hits;
  }

  /** The newest tag push in each repository given (one statement; each repository's is an index lookup). */
  async lastPushed(repositories: readonly string[]): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    if (repositories.length === 0) return result;
    const rows = await this.#db.all<{ name: string; pushed: string | null }>(
      `SELECT r.name, (SELECT MAX(t.updated_at) FROM tags t WHERE t.repository = r.name) AS pushed FROM repositories r WHERE r.name IN (${marks(repositories)})`,
      repositories,
    );
    for (const row of rows) if (row.pushed) result.set(row.name, row.pushed);
    return result;
  }

  async tagCount(repository: string): Promise<number> {
    const row = await this.#db.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM tags WHERE repository = ?', [repository]);
    return Number(row?.count ?? 0);
  }

  /** One page of a repository's tags: by name ascending, or newest push first. */
  async tags(repository: string, options: { order: TagOrder; prefix?: string; after?: TagCursor; limit: number }): Promise<TagRow[]> {
    const tag = this.#bytewise('t.tag');
    const where = ['t.repository = ?'];
    const params: (string | number)[] = [repository];
    if (options.prefix) {
      where.push(`${tag} >= ? AND ${tag} < ?`);
      params.push(options.prefix, `${options.prefix}\uffff`);
    }
    let order: string;
    if (options.order === 'pushed') {
      if (options.after?.pushedAt !== undefined) {
        // A row comparison, which both databases read as one range of the (repository, updated_at, tag) index.
        where.push(`(t.updated_at, ${tag}) < (?, ?)`);
        params.push(options.after.pushedAt, options.after.tag);
      }
      order = `t.updated_at DESC, ${tag} DESC`;
    } else {
      if (options.after) {
        where.push(`${tag} > ?`);
        params.push(options.after.tag);
      }
      order = tag;
    }
    params.push(options.limit);
    const rows = await this.#db.all<{ tag: string; digest: string; updated_at: string; media_type: string; artifact_type: string | null }>(
      `SELECT t.tag, t.digest, t.updated_at, m.media_type, m.artifact_type FROM tags t
       JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
       WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ?`,
      params,
    );
    return rows.map((row) => ({
      tag: row.tag,
      digest: row.digest,
      pushedAt: row.updated_at,
      mediaType: row.media_type,
      ...(row.artifact_type ? { artifactType: row.artifact_type } : {}),
    }));
  }

  /** Tags pointing at `digest` (at most `limit`). */
  async tagsOf(repository: string, digest: string, limit: number): Promise<string[]> {
    const rows = await this.#db.all<{ tag: string }>(`SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY ${this.#sortOnly('tag')} LIMIT ?`, [repository, digest, limit]);
    return rows.map((row) => row.tag);
  }

  /**
   * Sizes of the manifests given (and, for an index, of each platform): what
   * their blob references add up to; an index's total counts a layer shared
   * by two platforms once. Four statements for the whole page, each bounded:
   * an index with more than `MAX_SUMMARY_PLATFORMS` children or a body over
   * `MAX_SUMMARY_INDEX_BYTES` gets its count of children only, since its
   * pusher chose its size and every viewer would pay for it.
   */
  async summaries(repository: string, digests: readonly string[]): Promise<Map<string, ManifestSummary>> {
    const result = new Map<string, ManifestSummary>();
    const wanted = [...new Set(digests)];
    if (wanted.length === 0) return result;
    const manifests = await this.#db.all<{ digest: string; media_type: string; size: number | string; children: number | string }>(
      `SELECT m.digest, m.media_type, m.size,
         (SELECT COUNT(*) FROM manifest_references c WHERE c.repository = m.repository AND c.digest = m.digest AND c.kind = 'manifest') AS children
       FROM manifests m WHERE m.repository = ? AND m.digest IN (${marks(wanted)})`,
      [repository, ...wanted],
    );
    const small = manifests.filter((row) => Number(row.children) > 0 && Number(row.children) <= MAX_SUMMARY_PLATFORMS && Number(row.size) <= MAX_SUMMARY_INDEX_BYTES).map((row) => row.digest);
    const contents = new Map<string, Buffer>();
    const children = new Map<string, Set<string>>();
    if (small.length > 0) {
      for (const row of await this.#db.all<{ digest: string; content: Buffer | Uint8Array }>(`SELECT digest, content FROM manifests WHERE repository = ? AND digest IN (${marks(small)})`, [repository, ...small])) {
        contents.set(row.digest, Buffer.from(row.content));
      }
      for (const row of await this.#db.all<{ digest: string; child: string }>(
        `SELECT digest, child FROM manifest_references WHERE repository = ? AND kind = 'manifest' AND digest IN (${marks(small)})`,
        [repository, ...small],
      )) {
        const set = children.get(row.digest) ?? new Set<string>();
        set.add(row.child);
        children.set(row.digest, set);
      }
    }
    const owners = [...new Set([...manifests.filter((row) => Number(row.children) === 0).map((row) => row.digest), ...[...children.values()].flatMap((set) => [...set])])];
    const blobs = new Map<string, Map<string, number>>();
    if (owners.length > 0) {
      for (const row of await this.#db.all<{ digest: string; child: string; size: number | string }>(
        `SELECT mr.digest, mr.child, b.size FROM manifest_references mr JOIN blobs b ON b.digest = mr.child WHERE mr.repository = ? AND mr.kind = 'blob' AND mr.digest IN (${marks(owners)})`,
        [repository, ...owners],
      )) {
        const sizes = blobs.get(row.digest) ?? new Map<string, number>();
        sizes.set(row.child, Number(row.size));
        blobs.set(row.digest, sizes);
      }
    }
    const total = (of: Iterable<string>) => {
      const unique = new Map<string, number>();
      for (const digest of of) for (const [child, size] of blobs.get(digest) ?? []) unique.set(child, size);
      let sum = 0;
      for (const size of unique.values()) sum += size;
      return sum;
    };
    for (const row of manifests) {
      const count = Number(row.children);
      if (count === 0) {
        result.set(row.digest, { digest: row.digest, mediaType: row.media_type, bytes: total([row.digest]), children: 0 });
        continue;
      }
      const listed = children.get(row.digest);
      const content = contents.get(row.digest);
      if (!listed || !content) {
        result.set(row.digest, { digest: row.digest, mediaType: row.media_type, children: count });
        continue;
      }
      const platforms = platformsOf(content).slice(0, MAX_SUMMARY_PLATFORMS);
      for (const platform of platforms) if (listed.has(platform.digest)) platform.bytes = total([platform.digest]);
      result.set(row.digest, { digest: row.digest, mediaType: row.media_type, bytes: total(listed), children: count, platforms });
    }
    return result;
  }

  /** Up to `limit` referrers of `subject`, without their annotations (which the pages do not show). */
  async referrers(repository: string, subject: string, limit: number): Promise<{ digest: string; mediaType: string; size: number; artifactType?: string }[]> {
    const rows = await this.#db.all<{ digest: string; media_type: string; size: number | string; artifact_type: string | null }>(
      `SELECT digest, media_type, size, artifact_type FROM manifests WHERE repository = ? AND subject = ? ORDER BY ${this.#sortOnly('digest')} LIMIT ?`,
      [repository, subject, limit],
    );
    return rows.map((row) => ({ digest: row.digest, mediaType: row.media_type, size: Number(row.size), ...(row.artifact_type ? { artifactType: row.artifact_type } : {}) }));
  }

  /**
   * Live blobs linked into the namespace's repositories (the one named
   * `namespace` and those under `namespace/`), each counted once; every
   * repository's without a namespace.
   */
  async uniqueBytes(namespace: string | undefined): Promise<{ blobs: number; bytes: number }> {
    const { clause, params } = this.#namespace(namespace);
    const row = await this.#db.get<{ blobs: number | string; bytes: number | string | null }>(
      `SELECT COUNT(*) AS blobs, SUM(b.size) AS bytes FROM blobs b WHERE b.state = 'live' AND b.digest IN (SELECT rb.digest FROM repository_blobs rb WHERE ${clause})`,
      params,
    );
    return { blobs: Number(row?.blobs ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /** Bytes of live blobs linked into each repository of a namespace (all without one), bytewise after `after`. */
  async repositoryUsage(namespace: string | undefined, options: { after?: string; limit: number }): Promise<RepositoryUsage[]> {
    const repository = this.#bytewise('rb.repository');
    const { clause, params } = this.#namespace(namespace);
    let after = '';
    if (options.after !== undefined) {
      after = ` AND ${repository} > ?`;
      params.push(options.after);
    }
    params.push(options.limit);
    const rows = await this.#db.all<{ repository: string; blobs: number | string; bytes: number | string | null }>(
      `SELECT rb.repository, COUNT(*) AS blobs, SUM(b.size) AS bytes FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
       WHERE ${clause}${after} AND b.state = 'live'
       GROUP BY rb.repository ORDER BY ${repository} LIMIT ?`,
      params,
    );
    return rows.map((row) => ({ repository: row.repository, blobs: Number(row.blobs), bytes: Number(row.bytes ?? 0) }));
  }

  #namespace(namespace: string | undefined): { clause: string; params: (string | number)[] } {
    if (namespace === undefined) return { clause: 'true', params: [] };
    return { clause: inNamespace(this.#db, 'rb.repository'), params: namespaceRange(namespace) };
  }

  /**
   * Bytewise order that no index is chosen for. Without statistics (SQLite
   * never gathers them unless asked) the planner otherwise walks the primary
   * key to avoid sorting, reading every row of a repository to find the few
   * of one digest or subject: 100,000 tags took a manifest page to 180 ms.
   */
  #sortOnly(column: string): string {
    return this.#db.dialect === 'postgres' ? `${column} COLLATE "C"` : `+${column}`;
  }

  #bytewise(column: string): string {
    return this.#db.dialect === 'postgres' ? `${column} COLLATE "C"` : column;
  }
}

function marks(values: readonly unknown[]): string {
  return values.map(() => '?').join(', ');
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/** The `manifests` of an index with their platforms; nothing for anything else. */
function platformsOf(content: Buffer): PlatformEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString('utf8'));
  } catch {
    return [];
  }
  const manifests = (parsed as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) return [];
  const entries: PlatformEntry[] = [];
  for (const entry of manifests as unknown[]) {
    if (!entry || typeof entry !== 'object') continue;
    const { digest, mediaType, platform } = entry as { digest?: unknown; mediaType?: unknown; platform?: Record<string, unknown> };
    if (typeof digest !== 'string') continue;
    entries.push({
      digest,
      mediaType: typeof mediaType === 'string' ? mediaType : '',
      ...stringField('os', platform?.os),
      ...stringField('architecture', platform?.architecture),
      ...stringField('variant', platform?.variant),
    });
  }
  return entries;
}

function stringField<K extends string>(key: K, value: unknown): Partial<Record<K, string>> {
  return typeof value === 'string' ? ({ [key]: value } as Record<K, string>) : {};
}
