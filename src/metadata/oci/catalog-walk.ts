import type { Db, SqlValue } from '../db.ts';

/** Where a walk goes on after a repository it hides. */
export type Resume = { kind: 'next' } | { kind: 'from'; name: string } | { kind: 'end' };

/**
 * Which repositories one viewer sees, kept in memory by the access rules.
 * `resumeAfter` lets a walk skip a stretch it knows holds nothing shown (a
 * private namespace, or under `auth.defaultVisibility: private` everything
 * up to the next name the viewer may see), so a page costs what it shows
 * plus one query per stretch skipped, not a row read per repository.
 */
export interface CatalogFilter {
  shows(name: string): boolean;
  /** After `name`, which it hides: read on, jump to the least name it could show (inclusive), or stop. */
  resumeAfter(name: string): Resume;
}

/** Rows read by the first query of a walk and after each jump past a batch; doubled up to `MAX_BATCH` while none is. */
const FIRST_BATCH = 32;
const MAX_BATCH = 1024;

const SHOW_ALL: CatalogFilter = Object.freeze({ shows: () => true, resumeAfter: () => ({ kind: 'next' }) as const });

/**
 * Up to `limit` repository names the filter shows (all without one),
 * bytewise after `after`, read in name order. `where` narrows the rows (a
 * name search). Names are compared in JavaScript as in the index: repository
 * names are ASCII, so UTF-16 order is byte order.
 */
export async function walkRepositories(
  db: Db,
  filter: CatalogFilter | undefined,
  options: { after?: string; limit: number; where?: { sql: string; params: SqlValue[] } },
): Promise<string[]> {
  const name = db.dialect === 'postgres' ? 'name COLLATE "C"' : 'name';
  const shown: string[] = [];
  let bound: { name: string; inclusive: boolean } | undefined = options.after === undefined ? undefined : { name: options.after, inclusive: false };
  let batch = filter ? FIRST_BATCH : options.limit;
  const cut = filter === undefined;
  filter ??= SHOW_ALL;
  while (shown.length < options.limit) {
    // Filtered, a batch is not cut to what is left to show: with hidden rows that would be a query per row or two.
    const size = cut ? Math.min(batch, options.limit - shown.length) : batch;
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (options.where) {
      where.push(`(${options.where.sql})`);
      params.push(...options.where.params);
    }
    if (bound) {
      where.push(`${name} ${bound.inclusive ? '>=' : '>'} ?`);
      params.push(bound.name);
    }
    const rows = await db.all<{ name: string }>(`SELECT name FROM repositories${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${name} LIMIT ?`, [...params, size]);
    // Rows short of a jump's target are hidden (`resumeAfter` says so): passed over here, not read again.
    let skipTo: string | undefined;
    for (const { name: current } of rows) {
      if (skipTo !== undefined && current < skipTo) continue;
      skipTo = undefined;
      if (filter.shows(current)) {
        shown.push(current);
        if (shown.length === options.limit) return shown;
        continue;
      }
      const resume = filter.resumeAfter(current);
      if (resume.kind === 'end') return shown;
      if (resume.kind === 'from') skipTo = resume.name;
    }
    if (rows.length < size) return shown;
    if (skipTo !== undefined) {
      // The target lies past this batch: jump, and start small again, as the stretch after it may be hidden too.
      bound = { name: skipTo, inclusive: true };
      batch = FIRST_BATCH;
      continue;
    }
    bound = { name: (rows[rows.length - 1] as { name: string }).name, inclusive: false };
    batch = Math.min(batch * 2, MAX_BATCH);
  }
  return shown;
}
