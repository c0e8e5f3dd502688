import { forUpdate, type Db } from '../db.ts';
import { countUsage } from './blob-usage.ts';
import { orphanedBy, queueForReview } from './gc-review.ts';
import type { ChangeListener } from './types.ts';

export interface GcCandidate {
  kind: 'blob' | 'manifest';
  /** The manifest's repository; empty for blobs, which are global. */
  repository: string;
  digest: string;
  size: number;
  markedAt: Date;
}

export type SweepOutcome = 'delete' | 'deleted' | 'rescued' | 'waiting';

/**
 * Garbage-collection queries. What counts as a reference:
 *
 * - a blob is referenced while any manifest (any repository) lists it as
 *   config or layer; links alone do not keep it, but a link made after it was
 *   marked rescues it (a push is using it again);
 * - a manifest is referenced while it is tagged, listed by an index in its
 *   repository, or is a referrer whose subject still exists; re-pushing it
 *   after it was marked rescues it.
 *
 * Each sweep re-checks its candidate inside a transaction that locks the row
 * (Postgres) or runs alone (SQLite), so it cannot interleave with a push that
 * links or references the same digest. See docs/GC.md.
 */
export class GcStore {
  readonly #db: Db;
  readonly #changed: ChangeListener;

  constructor(db: Db, changed: ChangeListener = async () => {}) {
    this.#db = db;
    this.#changed = changed;
  }

  /**
   * Checks the queued entries of `kind` (see `queueForReview`) a page at a
   * time: the unreferenced ones become candidates marked `now`, and each
   * entry checked leaves the queue unless it was queued again meanwhile. So a
   * pass costs what changed since the last one, not the size of the registry.
   */
  async review(kind: GcCandidate['kind'], now: Date): Promise<{ reviewed: number; marked: number }> {
    let reviewed = 0;
    let marked = 0;
    for await (const page of this.#reviewPages(kind)) {
      await this.#db.transaction(async (tx) => {
        marked += await tx.run(
          `INSERT INTO gc_candidates (kind, repository, digest, size, marked_at) SELECT '${kind}', found.repository, found.digest, found.size, ? FROM (${UNMARKED[kind]}) found WHERE true ON CONFLICT DO NOTHING`,
          [now.toISOString(), ...page.range],
        );
        const values = page.rows.map(() => '(?, ?, CAST(? AS BIGINT))').join(', ');
        await tx.run(`DELETE FROM gc_review WHERE kind = ? AND (repository, digest) > (?, ?) AND (repository, digest) <= (?, ?) AND (repository, digest, gen) IN (VALUES ${values})`, [
          kind,
          ...page.range,
          ...page.rows.flatMap((row) => [row.repository, row.digest, row.gen]),
        ]);
      });
      reviewed += page.rows.length;
    }
    return { reviewed, marked };
  }

  /** What `review` would mark, changing nothing. */
  async *previewReview(kind: GcCandidate['kind'], now: Date): AsyncGenerator<GcCandidate> {
    for await (const page of this.#reviewPages(kind)) {
      const rows = await this.#db.all<{ repository: string; digest: string; size: number | string }>(UNMARKED[kind], page.range);
      for (const row of rows) yield { kind, repository: row.repository, digest: row.digest, size: Number(row.size), markedAt: now };
    }
  }

  /** The queue of `kind` in key order, a page at a time, each with the key range it spans. */
  async *#reviewPages(kind: GcCandidate['kind']): AsyncGenerator<{ rows: { repository: string; digest: string; gen: string }[]; range: string[] }> {
    let after = ['', ''];
    for (;;) {
      const rows = await this.#db.all<{ repository: string; digest: string; gen: number | string }>(
        'SELECT repository, digest, gen FROM gc_review WHERE kind = ? AND (repository, digest) > (?, ?) ORDER BY repository, digest LIMIT ?',
        [kind, ...after, PAGE],
      );
      if (rows.length === 0) return;
      const last = rows[rows.length - 1] as { repository: string; digest: string };
      yield { rows: rows.map((row) => ({ repository: row.repository, digest: row.digest, gen: String(row.gen) })), range: [...after, last.repository, last.digest] };
      after = [last.repository, last.digest];
    }
  }

  /** Recorded candidates of `kind` in key order, a page at a time. */
  async *candidates(kind: GcCandidate['kind']): AsyncGenerator<GcCandidate> {
    let after = ['', ''];
    for (;;) {
      const rows = await this.#db.all<{ repository: string; digest: string; size: number | string; marked_at: string }>(
        'SELECT repository, digest, size, marked_at FROM gc_candidates WHERE kind = ? AND (repository, digest) > (?, ?) ORDER BY repository, digest LIMIT ?',
        [kind, ...after, PAGE],
      );
      for (const row of rows) yield { kind, repository: row.repository, digest: row.digest, size: Number(row.size), markedAt: new Date(row.marked_at) };
      const last = rows.at(-1);
      if (rows.length < PAGE || !last) return;
      after = [last.repository, last.digest];
    }
  }

  async candidateCount(): Promise<number> {
    return Number((await this.#db.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM gc_candidates'))?.count ?? 0);
  }

  /** Deletes an untagged, unreferenced manifest marked before `cutoff`. */
  async sweepManifest(candidate: GcCandidate, cutoff: Date): Promise<SweepOutcome> {
    return this.#db.transaction(async (tx) => {
      const [row] = await lockIfUnreferenced(tx, candidate.repository, [candidate.digest]);
      if (!row || Date.parse(row.created_at) > candidate.markedAt.getTime()) {
        await rescue(tx, candidate);
        return 'rescued';
      }
      if (candidate.markedAt > cutoff) return 'waiting';
      const orphans = await orphanedBy(tx, candidate.repository, [candidate.digest]);
      await tx.run('DELETE FROM manifests WHERE repository = ? AND digest = ?', [candidate.repository, candidate.digest]);
      await tx.run('DELETE FROM manifest_references WHERE repository = ? AND digest = ?', [candidate.repository, candidate.digest]);
      await dropCandidate(tx, candidate);
      await this.#changed(tx, [{ kind: 'manifest.deleted', repository: candidate.repository, digest: candidate.digest, tags: [] }], { reason: 'gc' });
      await queueForReview(tx, orphans);
      return 'deleted';
    });
  }

  /**
   * Decides a blob candidate. `delete` means this call moved it to `deleting`
   * (stamped `pass.now`): no push can link it and no manifest can reference
   * it until `finishBlob`, and no other pass releases it. A blob another pass
   * is deleting is `waiting`, unless that deletion began before
   * `pass.staleBefore` (its registry died): then one pass takes it over.
   */
  async sweepBlob(candidate: GcCandidate, cutoff: Date, pass: { now: Date; staleBefore: Date }): Promise<SweepOutcome> {
    return this.#db.transaction(async (tx) => {
      const lock = await tx.get<{ state: string; deleting_since: string | null }>(
        `SELECT state, deleting_since FROM blobs WHERE digest = ?${tx.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
        [candidate.digest],
      );
      const referenced = await tx.get(`SELECT 1 AS one FROM blobs b WHERE b.digest = ? AND NOT (${UNREFERENCED_BLOB})`, [candidate.digest]);
      const touched = await tx.get<{ latest: string | null }>('SELECT MAX(created_at) AS latest FROM repository_blobs WHERE digest = ?', [candidate.digest]);
      const rescued = !lock || lock.state === 'deleted' || referenced !== undefined || (touched?.latest ? Date.parse(touched.latest) > candidate.markedAt.getTime() : false);
      if (rescued) {
        if (lock?.state === 'deleting') {
          await tx.run("UPDATE blobs SET state = 'live', deleting_since = NULL, generation = generation + 1 WHERE digest = ?", [candidate.digest]);
          await countUsage(tx, candidate.digest, 1);
        }
        await rescue(tx, candidate);
        return 'rescued';
      }
      if (lock.state === 'deleting') return takeOverIfStale(tx, candidate.digest, lock.deleting_since, pass);
      if (candidate.markedAt > cutoff) return 'waiting';
      const moved = await tx.run("UPDATE blobs SET state = 'deleting', deleting_since = ? WHERE digest = ? AND state = 'live'", [pass.now.toISOString(), candidate.digest]);
      if (moved !== 1) return 'waiting';
      await countUsage(tx, candidate.digest, -1);
      return 'delete';
    });
  }

  /**
   * After the hold released the bytes: a tombstone stays so a stale push
   * cannot revive it. `since` is the `now` of the sweep that answered
   * `delete`; if another pass has since taken the deletion over, or a push
   * revived the blob, this changes nothing.
   */
  async finishBlob(candidate: GcCandidate, since: Date): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const finished = await tx.run("UPDATE blobs SET state = 'deleted', deleting_since = NULL WHERE digest = ? AND state = 'deleting' AND deleting_since = ?", [
        candidate.digest,
        since.toISOString(),
      ]);
      if (finished === 0) return;
      await tx.run('DELETE FROM repository_blobs WHERE digest = ?', [candidate.digest]);
      await dropCandidate(tx, candidate);
    });
  }

  /** A blob row's lifecycle state, and when it entered `deleting`. */
  async blobState(digest: string): Promise<{ state: 'live' | 'deleting' | 'deleted'; deletingSince?: Date } | undefined> {
    const row = await this.#db.get<{ state: 'live' | 'deleting' | 'deleted'; deleting_since: string | null }>('SELECT state, deleting_since FROM blobs WHERE digest = ?', [digest]);
    if (!row) return undefined;
    return { state: row.state, ...(row.deleting_since ? { deletingSince: new Date(row.deleting_since) } : {}) };
  }

  /** Bytes of live blobs per pushing DID ('' for blobs with none), for the stored-bytes metric. */
  async bytesByDid(): Promise<{ did: string; bytes: number }[]> {
    const rows = await this.#db.all<{ did: string; bytes: number | string }>('SELECT did, bytes FROM blob_usage WHERE bytes <> 0 ORDER BY did');
    return rows.map((row) => ({ did: row.did, bytes: Number(row.bytes) }));
  }

  /** Keeps the summary of a finished pass, for the web pages of every instance. */
  async recordPass(summary: GcPassSummary): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.run(
        'INSERT INTO registry_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
        [LAST_PASS_KEY, JSON.stringify(summary), new Date().toISOString()],
      );
      await this.#changed(tx, [{ kind: 'gc.completed', summary }], { reason: 'gc' });
    });
  }

  async lastPass(): Promise<GcPassSummary | undefined> {
    const row = await this.#db.get<{ value: string }>('SELECT value FROM registry_state WHERE key = ?', [LAST_PASS_KEY]);
    return row ? (JSON.parse(row.value) as GcPassSummary) : undefined;
  }
}

/** What a finished GC pass did, without its items. */
export interface GcPassSummary {
  startedAt: string;
  seconds: number;
  deletedManifests: number;
  deletedBlobs: number;
  deletedBytes: number;
  waiting: number;
}

const LAST_PASS_KEY = 'gc.lastPass';

/**
 * Locks a manifest's row, then checks in a statement of its own that nothing
 * references it. On Postgres a statement that waited for a lock still reads
 * with the snapshot it began with, so checking in the locking statement would
 * miss a reference committed during the wait: an index stored over this
 * manifest, whose transaction share-locked it (`putManifest`).
 */
export async function lockIfUnreferenced(tx: Db, repository: string, digests: readonly string[]): Promise<{ digest: string; created_at: string }[]> {
  const list = digests.map(() => '?').join(', ');
  // In digest order: every locker of several manifest rows takes them in that order, so none waits on another in a cycle.
  const locked = await tx.all<{ digest: string }>(`SELECT digest FROM manifests WHERE repository = ? AND digest IN (${list}) ORDER BY digest${forUpdate(tx)}`, [repository, ...digests]);
  if (locked.length === 0) return [];
  return tx.all<{ digest: string; created_at: string }>(`SELECT m.digest, m.created_at FROM manifests m WHERE m.repository = ? AND m.digest IN (${list}) AND ${UNREFERENCED_MANIFEST}`, [
    repository,
    ...digests,
  ]);
}

// A NULL subject matches no row, so a manifest without one passes the last test.
const UNREFERENCED_MANIFEST = `NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.repository = m.repository AND r.child = m.digest AND r.kind = 'manifest')
  AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject)`;

const UNREFERENCED_BLOB = `NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.child = b.digest AND r.kind = 'blob')`;

/** Queued entries in a key range (after, up to: four parameters) that are unreferenced and not yet candidates, each by its primary key. */
const UNMARKED: Record<GcCandidate['kind'], string> = {
  manifest: `SELECT m.repository, m.digest, m.size FROM gc_review q JOIN manifests m ON m.repository = q.repository AND m.digest = q.digest
    WHERE q.kind = 'manifest' AND (q.repository, q.digest) > (?, ?) AND (q.repository, q.digest) <= (?, ?) AND ${UNREFERENCED_MANIFEST}
    AND NOT EXISTS (SELECT 1 FROM gc_candidates c WHERE c.kind = 'manifest' AND c.repository = m.repository AND c.digest = m.digest)`,
  blob: `SELECT '' AS repository, b.digest, b.size FROM gc_review q JOIN blobs b ON b.digest = q.digest
    WHERE q.kind = 'blob' AND (q.repository, q.digest) > (?, ?) AND (q.repository, q.digest) <= (?, ?) AND b.state <> 'deleted' AND ${UNREFERENCED_BLOB}
    AND NOT EXISTS (SELECT 1 FROM gc_candidates c WHERE c.kind = 'blob' AND c.repository = '' AND c.digest = b.digest)`,
};

/** Entries, and candidates, are read and checked this many at a time. */
const PAGE = 500;

/**
 * A blob another pass moved to `deleting`. Its release may still be running,
 * so it is left alone until it is older than `staleBefore`; then the one
 * transaction whose compare-and-set on `deleting_since` succeeds takes it over
 * (the row lock already serializes Postgres; the condition makes it so on any
 * isolation level). A row with no stamp was marked by an older version: the
 * timeout starts now.
 */
async function takeOverIfStale(tx: Db, digest: string, since: string | null, pass: { now: Date; staleBefore: Date }): Promise<SweepOutcome> {
  if (since === null) {
    await tx.run("UPDATE blobs SET deleting_since = ? WHERE digest = ? AND state = 'deleting' AND deleting_since IS NULL", [pass.now.toISOString(), digest]);
    return 'waiting';
  }
  if (Date.parse(since) >= pass.staleBefore.getTime()) return 'waiting';
  const taken = await tx.run("UPDATE blobs SET deleting_since = ? WHERE digest = ? AND state = 'deleting' AND deleting_since = ?", [pass.now.toISOString(), digest, since]);
  return taken === 1 ? 'delete' : 'waiting';
}

/** A candidate referenced or pushed again since it was marked: the next pass checks it afresh. */
async function rescue(tx: Db, candidate: GcCandidate): Promise<void> {
  await dropCandidate(tx, candidate);
  await queueForReview(tx, [candidate]);
}

async function dropCandidate(tx: Db, candidate: GcCandidate): Promise<void> {
  await tx.run('DELETE FROM gc_candidates WHERE kind = ? AND repository = ? AND digest = ?', [candidate.kind, candidate.repository, candidate.digest]);
}
