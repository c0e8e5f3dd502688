/**
 * The rows of a registry grown to N, inserted in bulk: one INSERT … SELECT
 * per table over a generated series (generate_series on Postgres, a
 * recursive CTE on SQLite), so 10⁶ rows take seconds, not minutes.
 *
 * Shape, with N on the x-axis: N blobs, N/5 manifests (config + 4 layers
 * each) in BIG, 5 tags on each manifest (N tags), N repositories for the
 * catalog, N open uploads across N/50 DIDs. Blobs with i % 100 == 0 are in no
 * manifest: 1 % unreferenced, which a GC pass with grace 0 deletes. Bulk
 * manifests reference bulk blobs only; the requests measured go to images
 * pushed through the API.
 */
import type { Db } from '../../src/metadata/db.ts';

export const BIG = 'scale/big';
export const APP = 'scale/app';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Old enough that no link or mark counts as recent. */
const LONG_AGO = '2026-01-01T00:00:00.000Z';

/** The digest of bulk blob `i`: fake (never read back), and never a real one. */
export function bulkBlobDigest(i: number): string {
  return `sha256:${i.toString(16).padStart(64, '0')}`;
}

export function tagName(i: number): string {
  return `t${String(i).padStart(7, '0')}`;
}

export function repositoryName(i: number): string {
  return `ns${String(Math.floor(i / 1000)).padStart(3, '0')}/r${String(i).padStart(7, '0')}`;
}

export function unreferencedBlobs(n: number): number {
  return Math.ceil(n / 100);
}

interface Dialect {
  series(n: number): string;
  hex(expr: string, width: number): string;
  dec(expr: string, width: number): string;
}

const POSTGRES: Dialect = {
  series: (n) => `(SELECT generate_series(0, ${n - 1}) AS i) s`,
  hex: (expr, width) => `lpad(to_hex(${expr}), ${width}, '0')`,
  dec: (expr, width) => `lpad((${expr})::text, ${width}, '0')`,
};

const SQLITE: Dialect = {
  series: (n) => `(WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < ${n - 1}) SELECT i FROM r) s`,
  hex: (expr, width) => `printf('%0${width}x', ${expr})`,
  dec: (expr, width) => `printf('%0${width}d', ${expr})`,
};

/** Integer division that both dialects agree on. */
const div = (expr: string, by: number) => `((${expr}) / ${by})`;

export async function fillRegistry(db: Db, n: number, options: { did: string }): Promise<void> {
  const d = db.dialect === 'postgres' ? POSTGRES : SQLITE;
  const manifests = Math.floor(n / 5);
  const blob = (expr: string) => `'sha256:' || ${d.hex(expr, 64)}`;
  const manifest = (expr: string) => `'sha256:e' || ${d.hex(expr, 63)}`;
  const content = db.dialect === 'postgres' ? `convert_to('{"n":' || s.i || '}', 'UTF8')` : `CAST('{"n":' || s.i || '}' AS BLOB)`;
  const statements = [
    `INSERT INTO blobs (digest, size, created_at, did) SELECT ${blob('s.i')}, 1000, '${LONG_AGO}', ? FROM ${d.series(n)}`,
    `INSERT INTO repository_blobs (repository, digest, created_at) SELECT '${BIG}', ${blob('s.i')}, '${LONG_AGO}' FROM ${d.series(n)}`,
    `INSERT INTO manifests (repository, digest, media_type, content, size, created_at) SELECT '${BIG}', ${manifest('s.i')}, '${OCI_MANIFEST}', ${content}, 12, '${LONG_AGO}' FROM ${d.series(manifests)}`,
    `INSERT INTO manifest_references (repository, digest, child, kind) SELECT '${BIG}', ${manifest(div('s.i', 5))}, ${blob('s.i')}, 'blob' FROM ${d.series(manifests * 5)} WHERE s.i % 100 <> 0`,
    `INSERT INTO tags (repository, tag, digest, updated_at) SELECT '${BIG}', 't' || ${d.dec('s.i', 7)}, ${manifest(div('s.i', 5))}, '${LONG_AGO}' FROM ${d.series(manifests * 5)}`,
    `INSERT INTO repositories (name, created_at) SELECT 'ns' || ${d.dec(div('s.i', 1000), 3)} || '/r' || ${d.dec('s.i', 7)}, '${LONG_AGO}' FROM ${d.series(n)}`,
    // What the registry's own writes keep alongside (migration 16): the tag count, the stored bytes per DID, and the GC
    // review queue, which holds the unreferenced 1 % as if the manifests that listed them had just been deleted.
    `UPDATE repositories SET tag_count = tag_count + ${manifests * 5} WHERE name = '${BIG}'`,
    `INSERT INTO blob_usage (did, bytes) VALUES (?, ${n * 1000}) ON CONFLICT (did) DO UPDATE SET bytes = blob_usage.bytes + excluded.bytes`,
    `INSERT INTO gc_review (kind, repository, digest, gen) SELECT 'blob', '', ${blob('s.i')}, 0 FROM ${d.series(n)} WHERE s.i % 100 = 0`,
    // Open within the upload window: each counts against its DID's open uploads.
    `INSERT INTO uploads (id, repository, did, created_at) SELECT 'bulk-' || ${d.dec('s.i', 8)}, '${APP}', 'did:plc:scale' || ${d.dec(div('s.i', 50), 16)}, ? FROM ${d.series(n)}`,
  ];
  for (const sql of statements) {
    const params = sql.startsWith('INSERT INTO blobs') || sql.startsWith('INSERT INTO blob_usage') ? [options.did] : sql.startsWith('INSERT INTO uploads') ? [new Date().toISOString()] : [];
    await db.transaction((tx) => tx.run(sql, params));
  }
  // As autovacuum would have by this size: statistics, and the visibility map index-only scans need.
  if (db.dialect === 'postgres') await db.run('VACUUM ANALYZE');
}
