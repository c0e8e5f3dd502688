import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { tarOf } from './tar.ts';

/**
 * Many small objects into MinIO fast: tars of up to `batch` keys, each one
 * PutObject that MinIO unpacks (`snowball-auto-extract`). For tests and
 * benchmarks that need thousands of keys in a bucket.
 */
export async function putMany(minio: { client: S3Client; bucket: string }, entries: Iterable<{ key: string; body: Buffer | string }>, options: { batch?: number; parallel?: number } = {}): Promise<number> {
  const batch = options.batch ?? 20_000;
  const parallel = options.parallel ?? 2;
  let count = 0;
  let pending: { key: string; body: Buffer }[] = [];
  const inFlight = new Set<Promise<void>>();
  const flush = async (items: { key: string; body: Buffer }[]) => {
    const put = minio.client
      .send(new PutObjectCommand({ Bucket: minio.bucket, Key: `snowball-${process.pid}-${count}.tar`, Body: tarOf(items), Metadata: { 'snowball-auto-extract': 'true' } }))
      .then(() => {});
    inFlight.add(put);
    put.finally(() => inFlight.delete(put)).catch(() => {});
    if (inFlight.size >= parallel) await Promise.race(inFlight);
  };
  for (const entry of entries) {
    pending.push({ key: entry.key, body: Buffer.from(entry.body) });
    count++;
    if (pending.length >= batch) {
      await flush(pending);
      pending = [];
    }
  }
  if (pending.length > 0) await flush(pending);
  await Promise.all(inFlight);
  return count;
}
