/**
 * The hold's side of a registry grown to N, written into MinIO by snowball:
 * min(N, 10⁵ or `maxUploads`) upload sessions (98 % fresh, 1 % idle past the TTL, each with
 * one staged segment), 1 % of directories orphaned (a staged segment and no
 * session), and for each unreferenced bulk blob its bytes and its claim, so
 * a GC pass releases them the way it releases a real blob.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { parseDigest, type Digest } from '../../src/core/digest.ts';
import { newSegmentId, normalizePrefix, storageKey } from '../../src/hold/keys.ts';
import { uploadNameFromUuid } from '../../src/protocol/upload-names.ts';
import type { UploadRecord } from '../../src/hold/uploads/records.ts';
import type { RunningMinio } from '../../test/support/minio.ts';
import { bulkBlobDigest } from './fill.ts';
import { putMany } from '../../test/support/snowball.ts';

export const MAX_HOLD_UPLOADS = 100_000;
const STAGED_BYTES = 1024;

function uuidOf(i: number): string {
  const hex = i.toString(16).padStart(12, '0');
  return `5ca1e000-0000-4000-8000-${hex}`;
}

function digestOf(text: string): Digest {
  const digest = parseDigest(text);
  if (!digest) throw new TypeError(`not a digest: ${text}`);
  return digest;
}

/** The claim id a real pushed blob carries: read off the bucket, not recomputed. */
export async function claimIdOf(minio: RunningMinio, prefix: string, realDigest: string): Promise<string> {
  const listed = await minio.client.send(new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: storageKey({ kind: 'blob-claims', digest: digestOf(realDigest) }, normalizePrefix(prefix)) }));
  const key = listed.Contents?.[0]?.Key;
  if (!key) throw new Error(`no claim for the pushed blob ${realDigest}`);
  return key.slice(key.lastIndexOf('/') + 1);
}

export interface HoldFill {
  uploads: number;
  idle: number;
  orphans: number;
  unreferencedBlobs: number;
  keys: number;
  seconds: number;
}

export async function fillHold(minio: RunningMinio, options: { prefix: string; n: number; did: string; claimId: string; blobs: boolean; maxUploads?: number }): Promise<HoldFill> {
  const started = performance.now();
  const prefix = normalizePrefix(options.prefix);
  const uploads = Math.min(options.n, options.maxUploads ?? MAX_HOLD_UPLOADS);
  const fresh = new Date().toISOString();
  const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
  let idle = 0;
  let orphans = 0;
  let blobs = 0;
  function* entries(): Generator<{ key: string; body: Buffer }> {
    for (let i = 0; i < uploads; i++) {
      const upload = uploadNameFromUuid(uuidOf(i));
      const segment = newSegmentId();
      yield { key: storageKey({ kind: 'upload-staged', upload, offset: 0, segment }, prefix), body: Buffer.alloc(STAGED_BYTES, 1) };
      if (i % 100 === 1) {
        orphans++;
        continue;
      }
      const when = i % 100 === 2 ? old : fresh;
      if (when === old) idle++;
      const record: UploadRecord = {
        version: 2,
        name: upload.value,
        did: options.did,
        kind: 'single',
        upload_id: '',
        state: 'open',
        created_at: when,
        updated_at: when,
        parts: [],
        staged: [{ offset: 0, size: STAGED_BYTES, segment_id: segment }],
        size: STAGED_BYTES,
      };
      yield { key: storageKey({ kind: 'upload-session', upload }, prefix), body: Buffer.from(JSON.stringify(record)) };
    }
    if (!options.blobs) return;
    for (let i = 0; i < options.n; i += 100) {
      const digest = digestOf(bulkBlobDigest(i));
      blobs++;
      yield { key: storageKey({ kind: 'blob', digest }, prefix), body: Buffer.alloc(1000, 2) };
      yield { key: storageKey({ kind: 'blob-claim', digest, issuerId: options.claimId }, prefix), body: Buffer.alloc(0) };
    }
  }
  const keys = await putMany(minio, entries());
  return { uploads: uploads - orphans, idle, orphans, unreferencedBlobs: blobs, keys, seconds: (performance.now() - started) / 1000 };
}
