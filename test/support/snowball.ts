import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { RunningS3 } from './s3-servers.ts';

/**
 * Writes many small objects in one request: MinIO unpacks a tar PUT with
 * `snowball-auto-extract` into one object per entry. For tests that need
 * thousands of keys in a bucket quickly.
 */
export async function putMany(minio: RunningS3, files: Iterable<{ key: string; body: string | Uint8Array }>, batch = 5000): Promise<number> {
  let count = 0;
  let chunks: Buffer[] = [];
  let inBatch = 0;
  const flush = async () => {
    if (inBatch === 0) return;
    chunks.push(Buffer.alloc(1024));
    const body = Buffer.concat(chunks);
    await minio.client.send(
      new PutObjectCommand({ Bucket: minio.bucket, Key: `snowball-${Date.now()}-${count}.tar`, Body: body, Metadata: { 'snowball-auto-extract': 'true' } }),
    );
    chunks = [];
    inBatch = 0;
  };
  for (const file of files) {
    const body = Buffer.from(file.body);
    chunks.push(ustarHeader(file.key, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
    inBatch++;
    count++;
    if (inBatch >= batch) await flush();
  }
  await flush();
  return count;
}

function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  let prefix = '';
  let rest = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    prefix = name.slice(0, cut);
    rest = name.slice(cut + 1);
    if (Buffer.byteLength(rest) > 100 || Buffer.byteLength(prefix) > 155) throw new TypeError(`key too long for ustar: ${name}`);
  }
  header.write(rest, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  header.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, '0') + '\0', 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write('0', 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return header;
}
