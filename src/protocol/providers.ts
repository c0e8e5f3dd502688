/**
 * What each S3-compatible provider needs, as data. The hold reads the
 * addressing and copy rules; the driver reads the part-size rules.
 */
export interface ProviderProfile {
  readonly name: ProviderName;
  /** Path-style addressing (`endpoint/bucket/key`) by default. */
  readonly forcePathStyle: boolean;
  /** Server-side UploadPartCopy, needed to move objects over 5 GiB. */
  readonly uploadPartCopy: boolean;
  /** Every non-trailing part must have the same length (R2). */
  readonly equalParts: boolean;
  /** PutObject with If-Match, used to guard upload session records. */
  readonly conditionalWrites: boolean;
  /** The part size the driver uses unless configured otherwise. */
  readonly defaultPartSize: number;
  /** ListMultipartUploads takes only a prefix ending in "/", not an object's key (Storj). */
  readonly listsUploadsByDirectory?: true;
  readonly notes: string;
}

export const PROVIDER_NAMES = ['aws', 'minio', 'storj', 'upcloud', 'r2', 'b2'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

const MiB = 1024 * 1024;

export const PROVIDER_PROFILES: Readonly<Record<ProviderName, ProviderProfile>> = Object.freeze({
  aws: { name: 'aws', forcePathStyle: false, uploadPartCopy: true, equalParts: false, conditionalWrites: true, defaultPartSize: 16 * MiB, notes: 'reference behaviour' },
  minio: { name: 'minio', forcePathStyle: true, uploadPartCopy: true, equalParts: false, conditionalWrites: true, defaultPartSize: 16 * MiB, notes: 'path-style by default' },
  storj: {
    name: 'storj',
    forcePathStyle: true,
    uploadPartCopy: false,
    equalParts: false,
    conditionalWrites: false,
    defaultPartSize: 64 * MiB,
    listsUploadsByDirectory: true,
    notes: '64 MiB parts map to one segment; no UploadPartCopy; ListMultipartUploads needs a prefix ending in "/"',
  },
  upcloud: { name: 'upcloud', forcePathStyle: true, uploadPartCopy: true, equalParts: false, conditionalWrites: false, defaultPartSize: 16 * MiB, notes: 'S3-compatible' },
  r2: {
    name: 'r2',
    forcePathStyle: true,
    uploadPartCopy: true,
    equalParts: true,
    conditionalWrites: true,
    defaultPartSize: 16 * MiB,
    notes: 'all non-trailing parts must have the same length; rejects the SDK default checksum headers',
  },
  b2: { name: 'b2', forcePathStyle: true, uploadPartCopy: true, equalParts: false, conditionalWrites: false, defaultPartSize: 16 * MiB, notes: 'rejects the SDK default checksum headers' },
});
