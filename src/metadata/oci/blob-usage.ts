import type { Db } from '../db.ts';

/**
 * Keeps `blob_usage` (bytes of live blobs per pushing DID) in step with a
 * blob's move into (`+1`) or out of (`-1`) the `live` state, in the
 * transaction that moves it and after the row holds its new size. Stored
 * bytes then read one row per DID instead of summing every blob.
 */
export async function countUsage(tx: Db, digest: string, sign: 1 | -1): Promise<void> {
  await tx.run(
    `INSERT INTO blob_usage (did, bytes) SELECT COALESCE(did, ''), size * ? FROM blobs WHERE digest = ?
     ON CONFLICT (did) DO UPDATE SET bytes = blob_usage.bytes + excluded.bytes`,
    [sign, digest],
  );
}
