import { randomInt } from 'node:crypto';
import type { Db } from '../db.ts';

/** A blob (repository '') or a manifest that may have lost its last reference. */
export interface ReviewEntry {
  kind: 'blob' | 'manifest';
  repository: string;
  digest: string;
}

/**
 * Queues entries for the next GC pass to check, in the transaction that may
 * have orphaned them, so a pass reads what changed instead of every blob and
 * manifest. Call it once per transaction, as late as possible: the rows are
 * locked in key order, so two transactions queueing overlapping entries wait
 * for each other instead of deadlocking. Queueing an entry again bumps its
 * generation, which keeps a pass from dropping it on the strength of a check
 * made before this change committed.
 */
export async function queueForReview(tx: Db, entries: readonly ReviewEntry[]): Promise<void> {
  // A new row starts at a random generation, not 0: a pass that read the entry before it left the queue and came back
  // must not find the generation it read and drop the new entry.
  const unique = new Map(entries.map((entry) => [`${entry.kind}\n${entry.repository}\n${entry.digest}`, entry]));
  const sorted = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, entry]) => entry);
  for (let start = 0; start < sorted.length; start += BATCH) {
    const batch = sorted.slice(start, start + BATCH);
    await tx.run(
      `INSERT INTO gc_review (kind, repository, digest, gen) VALUES ${batch.map(() => '(?, ?, ?, ?)').join(', ')}
       ON CONFLICT (kind, repository, digest) DO UPDATE SET gen = gc_review.gen + 1`,
      batch.flatMap((entry) => [entry.kind, entry.repository, entry.digest, randomInt(GENERATIONS)]),
    );
  }
}

/**
 * What deleting these manifests of `repository` may orphan: the blobs and
 * manifests they list, and the referrers whose subject they are. Read before
 * their reference rows are deleted.
 */
export async function orphanedBy(tx: Db, repository: string, digests: readonly string[]): Promise<ReviewEntry[]> {
  const entries: ReviewEntry[] = [];
  for (let start = 0; start < digests.length; start += BATCH) {
    const batch = digests.slice(start, start + BATCH);
    const list = batch.map(() => '?').join(', ');
    const children = await tx.all<{ child: string; kind: 'blob' | 'manifest' }>(`SELECT child, kind FROM manifest_references WHERE repository = ? AND digest IN (${list})`, [repository, ...batch]);
    for (const row of children) entries.push(row.kind === 'blob' ? { kind: 'blob', repository: '', digest: row.child } : { kind: 'manifest', repository, digest: row.child });
    const referrers = await tx.all<{ digest: string }>(`SELECT digest FROM manifests WHERE repository = ? AND subject IN (${list})`, [repository, ...batch]);
    for (const row of referrers) entries.push({ kind: 'manifest', repository, digest: row.digest });
  }
  return entries;
}

const BATCH = 200;
/** Random starting generations are drawn below this (2^47): far from overflowing a BIGINT however often a row is queued again. */
const GENERATIONS = 2 ** 47;
