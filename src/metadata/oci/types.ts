import type { Db } from '../db.ts';
import type { CatalogFilter } from './catalog-walk.ts';
import type { UploadHolds } from './upload-holds.ts';

/**
 * The registry's metadata: repositories, blob links, manifests, tags,
 * referrers and upload sessions. Two implementations share one SQL store:
 * SQLite (embedded) and PostgreSQL (several registry instances).
 *
 * Every method is durable when its promise resolves. Writes that touch several
 * rows (a manifest, its references and its tag) happen in one transaction.
 */
export interface BlobRecord {
  digest: string;
  size: number;
  /**
   * Which life of the blob at this digest (read only): it changes whenever
   * garbage collection deleted or was deleting it and it came back, possibly
   * as another object in storage.
   */
  generation?: number;
}

export interface UploadRow {
  /** The driver's writer id; also the id in the upload URL. */
  id: string;
  repository: string;
  did: string;
  createdAt: Date;
  /** The driver's `writer.state` after the upload's last request; unset while a request may be changing it. */
  state?: string;
}


export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  content: Buffer;
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
  /** Blobs (config, layers) and manifests (index entries) this manifest references. */
  blobs: readonly string[];
  manifests: readonly string[];
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * What a write changed, reported inside its transaction before it commits,
 * so what is reported (the events outbox, src/registry/events) commits or
 * rolls back with the change itself.
 */
export type RegistryChange =
  | { kind: 'manifest.pushed'; repository: string; digest: string; mediaType: string; size: number; tag?: string; artifactType?: string; subject?: string }
  | { kind: 'manifest.deleted'; repository: string; digest: string; tags: string[] }
  | { kind: 'tag.deleted'; repository: string; tag: string; digest: string }
  | { kind: 'gc.completed'; summary: { startedAt: string; seconds: number; deletedManifests: number; deletedBlobs: number; deletedBytes: number; waiting: number } };

/** Who or what made a change: a user (its name or DID), or a policy. */
export interface ChangeCause {
  actor?: string;
  reason?: 'api' | 'ui' | 'retention' | 'gc';
}

/** Called inside a change's transaction with what it changed; a rejection rolls the change back. */
export type ChangeListener = (tx: Db, changes: readonly RegistryChange[], cause: ChangeCause) => Promise<void>;

/** Whether a tag of the repository in question is immutable. */
export type TagPredicate = (tag: string) => boolean;

export interface Page {
  n?: number;
  last?: string;
}

export interface MetadataStore {
  /** `dropOlderThan` also deletes that DID's sessions created before it (abandoned ones). */
  createUpload(upload: UploadRow, options?: { dropOlderThan?: Date }): Promise<void>;
  /** Upload sessions `did` created after `since` and has not finished or cancelled. */
  countUploads(did: string, since: Date): Promise<number>;
  getUpload(repository: string, id: string): Promise<UploadRow | undefined>;
  /** Which request writes an upload, across instances (see `UploadHolds`). */
  readonly uploadHolds: UploadHolds;
  deleteUpload(id: string): Promise<void>;

  /**
   * Links a blob into a repository (creating both as needed) and refreshes
   * the link's time, which rescues it from a pending garbage collection. Safe
   * to repeat. Throws `BlobUnavailableError` when garbage collection is
   * deleting or has released the blob, unless `fresh` says these bytes were
   * just written (or were checked to be stored after the release). Resolves
   * true when it brought such a blob back: the release may have dropped the
   * claim the caller's own publish wrote, so claim the bytes again.
   */
  linkBlob(repository: string, blob: BlobRecord, options?: { fresh?: boolean; did?: string }): Promise<boolean>;
  /** Bytes of the live blobs linked into any repository under `namespace/`, each counted once. */
  namespaceBytes(namespace: string): Promise<number>;
  linkedInNamespace(namespace: string, digest: string): Promise<boolean>;
  /**
   * Records a blob the hold stored for this registry but that no repository
   * may link (a namespace quota refused it), so garbage collection releases it.
   */
  recordBlob(blob: BlobRecord, did: string, fresh: boolean): Promise<void>;
  /** The blob if it is linked into `repository`. */
  getBlob(repository: string, digest: string): Promise<BlobRecord | undefined>;
  /** Repositories a blob is linked into, for mounts without `from`. */
  blobRepositories(digest: string): Promise<string[]>;
  /** Unlinks a blob; `ImmutableTagError` if a manifest an immutable tag holds lists it. */
  unlinkBlob(repository: string, digest: string, options?: { immutable?: TagPredicate }): Promise<boolean>;

  /**
   * Stores a manifest, its references and (optionally) a tag, in one
   * transaction that also re-checks every referenced blob is still linked
   * here and live (`MissingBlobError` otherwise), so garbage collection can
   * never leave a manifest pointing at a deleted blob. A new tag beyond
   * `maxTags` in the repository is refused with `TagLimitError`, and moving
   * a tag `immutable` says is immutable with `ImmutableTagError` (re-pushing
   * the digest it already points at succeeds and changes nothing).
   */
  putManifest(manifest: ManifestRecord, tag?: string, options?: { maxTags?: number; immutable?: TagPredicate; cause?: ChangeCause }): Promise<void>;
  getManifest(repository: string, digest: string): Promise<ManifestRecord | undefined>;
  resolveTag(repository: string, tag: string): Promise<string | undefined>;
  /**
   * Deletes a manifest and every tag pointing at it; `ImmutableTagError` if
   * an immutable tag points at it or at an index that lists it.
   */
  deleteManifest(repository: string, digest: string, options?: { immutable?: TagPredicate; cause?: ChangeCause }): Promise<boolean>;
  /** Deletes a tag; `ImmutableTagError` if it exists and is immutable. */
  deleteTag(repository: string, tag: string, options?: { immutable?: TagPredicate; cause?: ChangeCause }): Promise<boolean>;
  listTags(repository: string, page?: Page): Promise<string[]>;
  listReferrers(repository: string, subject: string, artifactType?: string): Promise<ReferrerDescriptor[]>;
  repositoryExists(repository: string): Promise<boolean>;
  /** With `visible`, only the repositories that condition on `repositories.name` admits. */
  listRepositories(page?: Page, filter?: CatalogFilter): Promise<string[]>;

  close(): Promise<void>;
}

/**
 * Garbage collection is deleting (`deleting`) or has released (`deleted`)
 * this blob. A caller that can show the bytes are still stored may relink a
 * `deleted` blob; otherwise the client should upload it again.
 */
export class BlobUnavailableError extends Error {
  readonly digest: string;
  readonly state: 'deleting' | 'deleted';

  constructor(digest: string, state: 'deleting' | 'deleted') {
    super(`blob ${digest} is being garbage-collected; upload it again`);
    this.name = 'BlobUnavailableError';
    this.digest = digest;
    this.state = state;
  }
}

/** A manifest references a blob or manifest that is not (or no longer) in the repository. */
export class MissingBlobError extends Error {
  readonly digest: string;

  constructor(digest: string, kind: 'blob' | 'manifest' = 'blob') {
    super(`${kind} ${digest} is not in the repository`);
    this.name = 'MissingBlobError';
    this.digest = digest;
  }
}

/** A repository already has as many tags as the registry allows. */
export class TagLimitError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`the repository already has ${limit} tags, the most this registry allows; delete some first`);
    this.name = 'TagLimitError';
    this.limit = limit;
  }
}

/** An immutable tag would move, or it or the manifest it holds would be deleted. */
export class ImmutableTagError extends Error {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;

  constructor(repository: string, tag: string, digest: string, attempted: 'move' | 'delete tag' | 'delete manifest') {
    const what =
      attempted === 'move'
        ? `tag ${tag} in ${repository} is immutable and points at ${digest}; push under a new tag instead`
        : attempted === 'delete tag'
          ? `tag ${tag} in ${repository} is immutable and cannot be deleted`
          : `manifest ${digest} in ${repository} is held by the immutable tag ${tag} and cannot be deleted`;
    super(what);
    this.name = 'ImmutableTagError';
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }
}
