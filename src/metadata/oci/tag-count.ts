import type { Db } from '../db.ts';

/**
 * Moves a repository's tag count (`repositories.tag_count`) by `delta` in the
 * transaction that adds or deletes its tags; resolves to the new count. The
 * tag limit reads it instead of counting a repository's tags.
 */
export async function countTags(tx: Db, repository: string, delta: number): Promise<number> {
  const row = await tx.get<{ tag_count: number | string }>('UPDATE repositories SET tag_count = tag_count + ? WHERE name = ? RETURNING tag_count', [delta, repository]);
  return Number(row?.tag_count ?? 0);
}
