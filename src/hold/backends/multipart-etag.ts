import { createHash } from 'node:crypto';
import type { CompletedPartInput } from './types.ts';

/**
 * S3's ETag of a multipart object: the MD5 of its parts' MD5s, then `-` and
 * the part count. Undefined when a part's ETag is not a plain MD5 (encrypted
 * objects, some providers): nothing can be concluded then.
 *
 * It names a part list, nothing more: MD5 collisions are cheap, so equal
 * ETags never show equal bytes. Backends use it only to recognise a
 * completion they already made from these very parts.
 */
export function multipartEtag(parts: readonly CompletedPartInput[]): string | undefined {
  const digests = parts.map((part) => part.etag.replace(/"/g, ''));
  if (digests.length === 0 || !digests.every((digest) => /^[0-9a-f]{32}$/.test(digest))) return undefined;
  const md5 = createHash('md5');
  for (const digest of digests) md5.update(Buffer.from(digest, 'hex'));
  return `${md5.digest('hex')}-${digests.length}`;
}
