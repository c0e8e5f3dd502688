import type { Db } from '../db.ts';

/** Items a report lists; past it, only the count. */
const REPORT_LIMIT = 1000;

export interface Drift<K extends string> {
  /** Rows whose kept total differs from the rows it counts. */
  drifted: number;
  items: ({ recorded: number; counted: number } & Record<K, string>)[];
}

export interface RecountReport {
  /** `repositories.tag_count`, the tag limit's count. */
  tagCounts: Drift<'repository'>;
  /** `blob_usage`, stored bytes per pushing DID ('' for blobs with none). */
  storedBytes: Drift<'did'>;
  fixed: boolean;
}

/**
 * Checks the totals the registry keeps beside its rows (each moved in the
 * transaction that moves what it counts) against a count of those rows, and
 * with `fix` writes the counted ones. Writers of tags and blobs wait while it
 * runs, so what it counts and what it reads as recorded are one state: on
 * Postgres by a table lock, on SQLite by the write lock every transaction
 * here takes.
 */
export async function recountTotals(db: Db, options: { fix: boolean }): Promise<RecountReport> {
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.run('LOCK TABLE tags, blobs IN SHARE MODE');
    const drifting = `FROM repositories r LEFT JOIN (SELECT repository, COUNT(*) AS counted FROM tags GROUP BY repository) c ON c.repository = r.name WHERE r.tag_count <> COALESCE(c.counted, 0)`;
    const tags = await tx.all<{ name: string; recorded: number | string; counted: number | string }>(
      `SELECT r.name, r.tag_count AS recorded, COALESCE(c.counted, 0) AS counted ${drifting} ORDER BY r.name LIMIT ${REPORT_LIMIT}`,
    );
    const tagsDrifted = tags.length < REPORT_LIMIT ? tags.length : Number((await tx.get<{ n: number | string }>(`SELECT COUNT(*) AS n ${drifting}`))?.n ?? 0);
    const recorded = new Map((await tx.all<{ did: string; bytes: number | string }>('SELECT did, bytes FROM blob_usage')).map((row) => [row.did, Number(row.bytes)]));
    const counted = new Map(
      (await tx.all<{ did: string; bytes: number | string }>(`SELECT COALESCE(did, '') AS did, SUM(size) AS bytes FROM blobs WHERE state = 'live' GROUP BY COALESCE(did, '')`)).map((row) => [row.did, Number(row.bytes)]),
    );
    const usage = [...new Set([...recorded.keys(), ...counted.keys()])]
      .sort()
      .map((did) => ({ did, recorded: recorded.get(did) ?? 0, counted: counted.get(did) ?? 0 }))
      .filter((row) => row.recorded !== row.counted);
    if (options.fix) {
      const count = '(SELECT COUNT(*) FROM tags t WHERE t.repository = repositories.name)';
      if (tagsDrifted > 0) await tx.run(`UPDATE repositories SET tag_count = ${count} WHERE tag_count <> ${count}`);
      for (const row of usage) {
        await tx.run('INSERT INTO blob_usage (did, bytes) VALUES (?, ?) ON CONFLICT (did) DO UPDATE SET bytes = excluded.bytes', [row.did, row.counted]);
      }
    }
    return {
      tagCounts: { drifted: tagsDrifted, items: tags.map((row) => ({ repository: row.name, recorded: Number(row.recorded), counted: Number(row.counted) })) },
      storedBytes: { drifted: usage.length, items: usage.slice(0, REPORT_LIMIT) },
      fixed: options.fix,
    };
  });
}
