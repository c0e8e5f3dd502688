import { createHash, randomBytes } from 'node:crypto';
import { parseDigest, type Digest } from '../core/digest.ts';
import { parseUploadName, parseUploadUuid, type UploadName } from '../protocol/upload-names.ts';


/**
 * The only place a storage key is built. Every input is a typed spec whose
 * fields were validated when it was parsed, so no client-chosen text can
 * reach a key.
 *
 * Bucket layout (under the optional prefix):
 *
 *   docker/registry/v2/blobs/                  distribution's layout, so
 *     sha256/<hex[0:2]>/<hex>/data             existing buckets stay readable
 *   holdfast/claims/<alg>/<hex>/<issuer id>    one per registry (issuer, and its
 *                                              service when named) that references
 *                                              the blob; the last release deletes it
 *   holdfast/deleting/<alg>/<hex>              the lease of a deletion in progress
 *                                              (created only if absent); /move and
 *                                              /claim wait while it is there
 *   holdfast/uploads/<uuid>/
 *     session.json                             owner DID, multipart id, parts,
 *                                              staged tail, hash progress
 *     data                                     the upload's bytes (sessions of
 *                                              version 1 only)
 *     staged/<offset, 20 digits>.<segment id>  durable tail segments, each
 *                                              shorter than one part; every
 *                                              staging URL has a key of its own
 *                                              (32 hex digits the hold chose), so
 *                                              no writer can replace another's
 *                                              (without `.<segment id>`: records
 *                                              from before segment ids)
 *   holdfast/quota/charges/<alg>/<hex>/<did id>  a DID is charged for a blob
 *                                              (created only if absent); all go
 *                                              when the blob's bytes are deleted
 *   holdfast/quota/usage/<did id>              the DID's charged bytes, updated
 *                                              by compare-and-swap on its ETag
 *   holdfast/objects/<uuid>                    the upload's bytes (version 2):
 *                                              the multipart target, and after
 *                                              commit the blob's bytes when the
 *                                              blob key holds a reference to it
 */
export type KeySpec =
  | { kind: 'blob'; digest: Digest }
  | { kind: 'upload-data'; upload: UploadName }
  | { kind: 'upload-object'; upload: UploadName }
  | { kind: 'upload-session'; upload: UploadName }
  | { kind: 'upload-staged'; upload: UploadName; offset: number; segment?: string }
  | { kind: 'uploads-root' }
  | { kind: 'blob-claims'; digest: Digest }
  | { kind: 'blob-claim'; digest: Digest; issuerId: string }
  | { kind: 'blob-deleting'; digest: Digest }
  | { kind: 'deletions-root' }
  | { kind: 'quota-charges'; digest: Digest }
  | { kind: 'quota-charge'; digest: Digest; didId: string }
  | { kind: 'quota-charges-root' }
  | { kind: 'quota-usage'; didId: string }
  | { kind: 'quota-usage-root' };

const OFFSET_WIDTH = 20;
const SEGMENT_ID = /^[0-9a-f]{32}$/;

/** A fresh name for a staged segment's object. */
export function newSegmentId(): string {
  return randomBytes(16).toString('hex');
}

export type BlobRef = { kind: 'digest'; digest: Digest } | { kind: 'upload'; upload: UploadName };

/** A request's `digest` field: a content digest or an upload name, nothing else. */
export function parseBlobRef(input: unknown): BlobRef | undefined {
  const digest = parseDigest(input);
  if (digest) return { kind: 'digest', digest };
  const upload = parseUploadName(input);
  if (upload) return { kind: 'upload', upload };
  return undefined;
}

/** A registry's identity as a fixed-length, path-safe id for claim keys. */
export function issuerId(issuer: string): string {
  return createHash('sha256').update(issuer).digest('hex').slice(0, 32);
}

/** A DID as a fixed-length, path-safe id for quota keys. */
export function didId(did: string): string {
  return createHash('sha256').update(`did\0${did}`).digest('hex').slice(0, 32);
}

function checkedId(id: string): string {
  if (!/^[a-f0-9]{32}$/.test(id)) throw new TypeError('an id in a key must be 32 hex characters');
  return id;
}

export function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new TypeError('key prefix must not contain "." or ".." segments');
  }
  return trimmed === '' ? '' : `${trimmed}/`;
}

export function storageKey(spec: KeySpec, prefix = ''): string {
  switch (spec.kind) {
    case 'blob': {
      const { algorithm, hex } = spec.digest;
      return `${prefix}docker/registry/v2/blobs/${algorithm}/${hex.slice(0, 2)}/${hex}/data`;
    }
    case 'uploads-root':
      return `${prefix}holdfast/uploads/`;
    case 'blob-claims':
      return `${prefix}holdfast/claims/${spec.digest.algorithm}/${spec.digest.hex}/`;
    case 'blob-claim': {
      if (!/^[a-f0-9]{32}$/.test(spec.issuerId)) throw new TypeError('issuerId must be 32 hex characters');
      return `${prefix}holdfast/claims/${spec.digest.algorithm}/${spec.digest.hex}/${spec.issuerId}`;
    }
    case 'blob-deleting':
      return `${prefix}holdfast/deleting/${spec.digest.algorithm}/${spec.digest.hex}`;
    case 'deletions-root':
      return `${prefix}holdfast/deleting/`;
    case 'quota-charges':
      return `${prefix}holdfast/quota/charges/${spec.digest.algorithm}/${spec.digest.hex}/`;
    case 'quota-charge':
      return `${prefix}holdfast/quota/charges/${spec.digest.algorithm}/${spec.digest.hex}/${checkedId(spec.didId)}`;
    case 'quota-charges-root':
      return `${prefix}holdfast/quota/charges/`;
    case 'quota-usage':
      return `${prefix}holdfast/quota/usage/${checkedId(spec.didId)}`;
    case 'quota-usage-root':
      return `${prefix}holdfast/quota/usage/`;
    case 'upload-data':
      return `${prefix}holdfast/uploads/${spec.upload.uuid}/data`;
    case 'upload-object':
      return `${prefix}holdfast/objects/${spec.upload.uuid}`;
    case 'upload-session':
      return `${prefix}holdfast/uploads/${spec.upload.uuid}/session.json`;
    case 'upload-staged': {
      if (!Number.isSafeInteger(spec.offset) || spec.offset < 0) throw new TypeError('offset must be a non-negative integer');
      if (spec.segment !== undefined && !SEGMENT_ID.test(spec.segment)) throw new TypeError('a segment id is 32 hex characters');
      const name = String(spec.offset).padStart(OFFSET_WIDTH, '0') + (spec.segment === undefined ? '' : `.${spec.segment}`);
      return `${prefix}holdfast/uploads/${spec.upload.uuid}/staged/${name}`;
    }
  }
}

/** The upload whose directory under `uploads-root` holds `key`. */
export function uploadFromUploadKey(key: string, prefix = ''): UploadName | undefined {
  const root = storageKey({ kind: 'uploads-root' }, prefix);
  if (!key.startsWith(root)) return undefined;
  const uuid = key.slice(root.length).split('/', 1)[0] as string;
  return parseUploadUuid(uuid);
}

/** The upload a key under `uploads-root` belongs to, for the janitor's listing. */
export function uploadFromSessionKey(key: string, prefix = ''): UploadName | undefined {
  const root = storageKey({ kind: 'uploads-root' }, prefix);
  if (!key.startsWith(root) || !key.endsWith('/session.json')) return undefined;
  const uuid = key.slice(root.length, -'/session.json'.length);
  return parseUploadUuid(uuid);
}

/**
 * The upload whose object `key` is, if it is exactly an `upload-object` key
 * under `prefix`: what a blob reference read back from the bucket may name.
 */
export function uploadFromObjectKey(key: string, prefix = ''): UploadName | undefined {
  const root = `${prefix}holdfast/objects/`;
  if (!key.startsWith(root)) return undefined;
  const uuid = key.slice(root.length);
  return parseUploadUuid(uuid);
}

/** The digest a deletion lease's key is for, for the janitor's listing. */
export function digestFromDeletingKey(key: string, prefix = ''): Digest | undefined {
  const root = storageKey({ kind: 'deletions-root' }, prefix);
  if (!key.startsWith(root)) return undefined;
  return parseDigest(key.slice(root.length).replace('/', ':'));
}
