import { randomUUID } from 'node:crypto';
import type { Digest } from '../core/digest.ts';
import { HoldError } from './errors.ts';
import { uploadNameFromUuid, type UploadName } from './keys.ts';
import { assertCompletableParts, assertNonFinalPartSizes, assertPartNumber, normalizeEtag } from './multipart-rules.ts';
import { samePartList } from '../protocol/parts.ts';
import { completedParts, isUsable, uploadNameOf, type SessionPart, type StagedSegment, type UploadSession } from './sessions.ts';
import { mappingStorageErrors } from './storage-errors.ts';
import { discardUpload } from './discard.ts';
import { requireContentDigest, type HoldContext } from './context.ts';
import { MAX_PART_NUMBER, MIN_PART_SIZE } from './backends/types.ts';
import type { HoldPartUrl } from '../protocol/hold-api.ts';

export interface UploadView {
  upload_name: string;
  upload_id: string;
  state: UploadSession['state'];
  created_at: string;
  updated_at: string;
  expires_at: string;
  size: number;
  /** Set once the multipart upload is complete: the assembled object's size. */
  completed_size?: number;
  parts: readonly SessionPart[];
  staged: readonly StagedSegment[];
  client_state?: Readonly<Record<string, unknown>>;
  part_urls?: PartUrlView[];
}

export type PartUrlView = HoldPartUrl;

export interface CompleteMultipartInput {
  digest: string;
  upload_id: string;
  parts: readonly { part_number: number; etag: string; size?: number }[];
}

export interface UploadProgressInput {
  digest: string;
  upload_id: string;
  base_size: number;
  parts?: readonly SessionPart[];
  staged?: readonly StagedSegment[];
  client_state?: Record<string, unknown>;
  presign_parts?: number;
}

const MAX_CLIENT_STATE_BYTES = 4096;

/** Multipart uploads from start to completion or abort, and the progress recorded on the way. */
export class Uploads {
  readonly #ctx: HoldContext;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  async start(
    did: string,
    input: { digest?: string; client_state?: Record<string, unknown>; presign_parts?: number },
  ): Promise<{ upload_id: string; upload_name: string; expires_at: string; part_urls?: PartUrlView[] }> {
    this.#ctx.authorize(did, 'write');
    const expected = input.digest === undefined ? undefined : requireContentDigest(input.digest);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      const session = await this.begin(this.newSession(uploadNameFromUuid(randomUUID()), did, 'multipart', expected, input.client_state));
      return { upload_id: session.upload_id, upload_name: session.name, expires_at: this.#expiresAt(session), ...(await this.#partUrls(session, input.presign_parts)) };
    });
  }

  /**
   * PUT URLs for the `count` parts after the recorded ones: presigning is
   * local, so handing them out with an answer the caller needs anyway saves
   * it a `/part-presigned-url` round trip per part.
   */
  async #partUrls(session: UploadSession, count = 0): Promise<{ part_urls?: PartUrlView[] }> {
    if (count === 0 || session.state !== 'open' || session.kind !== 'multipart') return {};
    const key = this.#ctx.dataKey(uploadNameOf(session), session);
    const first = session.parts.length + 1;
    const numbers = Array.from({ length: Math.min(count, MAX_PART_NUMBER - first + 1) }, (_, index) => first + index);
    const urls = await Promise.all(numbers.map((partNumber) => this.#ctx.backend.presignUploadPart(key, session.upload_id, partNumber, this.#ctx.presignTtl)));
    return { part_urls: urls.map((url, index) => ({ part_number: numbers[index] as number, url: url.url, expires_at: url.expiresAt.toISOString() })) };
  }

  /**
   * Records the upload as starting, creates the provider's multipart upload,
   * then records its id: a hold that dies between the two writes leaves a
   * record, never an upload nothing names (see `discardUpload`). Two sequential
   * writes either way; the first costs one more small PUT.
   */
  async begin(starting: UploadSession): Promise<UploadSession> {
    const upload = uploadNameOf(starting);
    await this.#ctx.sessions.put(starting);
    let session = starting;
    try {
      const uploadId = await this.#ctx.backend.createMultipartUpload(this.#ctx.key({ kind: 'upload-object', upload }));
      session = { ...starting, upload_id: uploadId, state: 'open' };
      await this.#ctx.step('start:upload-created', upload.value);
      await this.#ctx.sessions.put(session);
      return session;
    } catch (err) {
      await discardUpload(this.#ctx, upload, session).catch(() => {});
      throw err;
    }
  }

  async complete(did: string, input: CompleteMultipartInput): Promise<{ upload_name: string; size: number }> {
    this.#ctx.authorize(did, 'write');
    assertCompletableParts(input.parts);
    return this.#ctx.updating(input.digest, () => this.#complete(did, input));
  }

  async #complete(did: string, input: CompleteMultipartInput): Promise<{ upload_name: string; size: number }> {
    const { upload, session, etag } = await this.#ctx.ownedSession(did, input.digest, input.upload_id);
    if (session.kind !== 'multipart') throw new HoldError('UPLOAD_UNKNOWN', 'this upload is not a multipart upload');
    if (session.state === 'completed') {
      if (session.completed_parts && !samePartList(session.completed_parts, input.parts)) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload was completed from other parts');
      return { upload_name: upload.value, size: session.completed_size ?? 0 };
    }
    const recorded = new Map(session.parts.map((part) => [part.part_number, part.size]));
    assertNonFinalPartSizes(input.parts.map((part) => ({ part_number: part.part_number, size: part.size ?? recorded.get(part.part_number) })));
    return mappingStorageErrors(async () => {
      const key = this.#ctx.dataKey(upload, session);
      const parts = input.parts.map((part) => ({ partNumber: part.part_number, etag: normalizeEtag(part.etag) }));
      await this.#ctx.backend.completeMultipartUpload(key, session.upload_id, parts);
      const object = await this.#ctx.backend.stat(key);
      const size = object?.size ?? 0;
      await this.#ctx.sessions.put(
        { ...session, state: 'completed', completed_size: size, completed_parts: completedParts(input.parts), updated_at: this.#ctx.now().toISOString() },
        etag,
      );
      return { upload_name: upload.value, size };
    });
  }

  async abort(did: string, input: { digest: string; upload_id: string }): Promise<{ aborted: true }> {
    this.#ctx.authorize(did, 'write');
    const { upload, session } = await this.#ctx.ownedSession(did, input.digest, input.upload_id);
    await mappingStorageErrors(() => discardUpload(this.#ctx, upload, session));
    return { aborted: true };
  }

  async status(did: string, input: { digest: string; upload_id: string; presign_parts?: number }): Promise<UploadView> {
    this.#ctx.authorize(did, 'write');
    return this.#ctx.updating(input.digest, async () => {
      const { upload, session, etag } = await this.#ctx.ownedSession(did, input.digest, input.upload_id);
      const current = await mappingStorageErrors(() => this.#withUnrecordedParts(upload, session, etag));
      return { ...this.#view(current), ...(await mappingStorageErrors(() => this.#partUrls(current, input.presign_parts))) };
    });
  }

  /**
   * A driver records whole parts only every few requests; the ones it has
   * not recorded are durable all the same. They are recorded here, as far as
   * they run on from the recorded ones at the last recorded part's size (a
   * shorter last part sent ahead of a commit is not one of them), so any
   * process resumes from every durable byte. The staged segments they cover
   * go. A record that changed meanwhile is answered as it is now.
   */
  async #withUnrecordedParts(upload: UploadName, session: UploadSession, etag: string): Promise<UploadSession> {
    const last = session.parts.at(-1);
    if (session.kind !== 'multipart' || session.state !== 'open' || !last) return session;
    const listed = await this.#ctx.backend.uploadedPartsFrom(this.#ctx.dataKey(upload, session), session.upload_id, last.part_number + 1, MAX_PART_NUMBER);
    const unequal = listed.findIndex((part) => part.size !== last.size);
    const found = unequal < 0 ? listed : listed.slice(0, unequal);
    if (found.length === 0) return session;
    const parts = [...session.parts, ...found.map((part) => ({ part_number: part.partNumber, etag: normalizeEtag(part.etag), size: part.size }))];
    const size = parts.reduce((sum, part) => sum + part.size, 0);
    const updated: UploadSession = { ...session, parts, staged: [], size, updated_at: this.#ctx.now().toISOString() };
    if (!(await this.#ctx.sessions.putIfUnchanged(updated, etag))) {
      const fresh = await this.#ctx.sessions.read(upload);
      if (!fresh || !isUsable(fresh.session)) throw new HoldError('UPLOAD_UNKNOWN');
      return fresh.session;
    }
    await this.#ctx.backend.delete(session.staged.map((segment) => this.#ctx.key({ kind: 'upload-staged', upload, offset: segment.offset })));
    return updated;
  }

  /**
   * Records durable progress: parts whose ETags came back, and the staged
   * segments that now hold the tail. `base_size` is the size the caller last
   * saw; a mismatch means another writer moved on, and nothing changes.
   */
  async progress(did: string, input: UploadProgressInput): Promise<UploadView> {
    this.#ctx.authorize(did, 'write');
    return this.#ctx.updating(input.digest, () => this.#ctx.startingOverIfStale((remembered) => this.#recordProgress(did, input, remembered)));
  }

  async #recordProgress(did: string, input: UploadProgressInput, remembered: boolean): Promise<UploadView> {
    const { upload, session, etag } = await this.#ctx.openSession(did, input.digest, input.upload_id, 'multipart', { remembered });
    if (input.base_size !== session.size) {
      throw new HoldError('UPLOAD_STATE_CONFLICT', `the upload holds ${session.size} bytes, not ${input.base_size}`);
    }
    const parts = [...session.parts, ...(input.parts ?? []).map((part) => ({ ...part, etag: normalizeEtag(part.etag) }))];
    checkRecordedParts(parts, session.parts.length);
    const partBytes = parts.reduce((sum, part) => sum + part.size, 0);
    const staged = input.staged ?? (input.parts?.length ? [] : session.staged);
    checkStagedSegments(staged, partBytes);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      const known = new Set(session.staged.map(segmentId));
      for (const segment of staged.filter((candidate) => !known.has(segmentId(candidate)))) {
        const object = await this.#ctx.backend.stat(this.#ctx.key({ kind: 'upload-staged', upload, offset: segment.offset }));
        if (object?.size !== segment.size) {
          throw new HoldError('SIZE_INVALID', `staged segment at offset ${segment.offset} holds ${object?.size ?? 0} bytes, not ${segment.size}`);
        }
      }
      const size = staged.reduce((sum, segment) => sum + segment.size, partBytes);
      const updated: UploadSession = {
        ...session,
        parts,
        staged,
        size,
        client_state: input.client_state ?? session.client_state,
        updated_at: this.#ctx.now().toISOString(),
      };
      await this.#ctx.sessions.put(updated, etag);
      const kept = new Set(staged.map(segmentId));
      const dropped = session.staged.filter((segment) => !kept.has(segmentId(segment)));
      await this.#ctx.backend.delete(dropped.map((segment) => this.#ctx.key({ kind: 'upload-staged', upload, offset: segment.offset })));
      return { ...this.#view(updated), ...(await this.#partUrls(updated, input.presign_parts)) };
    });
  }

  /** A record for an upload about to start: no provider upload yet. */
  newSession(upload: UploadName, did: string, kind: UploadSession['kind'], expected?: Digest, clientState?: Record<string, unknown>): UploadSession {
    const now = this.#ctx.now().toISOString();
    return {
      version: 2,
      name: upload.value,
      did,
      kind,
      upload_id: '',
      ...(expected ? { expected_digest: expected.value } : {}),
      ...(clientState ? { client_state: clientState } : {}),
      state: 'starting',
      created_at: now,
      updated_at: now,
      parts: [],
      staged: [],
      size: 0,
    };
  }

  #view(session: UploadSession): UploadView {
    return {
      upload_name: session.name,
      upload_id: session.upload_id,
      state: session.state,
      created_at: session.created_at,
      updated_at: session.updated_at,
      expires_at: this.#expiresAt(session),
      size: session.size,
      ...(session.completed_size !== undefined ? { completed_size: session.completed_size } : {}),
      parts: session.parts,
      staged: session.staged,
      ...(session.client_state ? { client_state: session.client_state } : {}),
    };
  }

  #expiresAt(session: UploadSession): string {
    return new Date(Date.parse(session.updated_at) + this.#ctx.uploadTtlMs).toISOString();
  }
}

function checkClientState(state: Record<string, unknown> | undefined): void {
  if (state && Buffer.byteLength(JSON.stringify(state)) > MAX_CLIENT_STATE_BYTES) {
    throw new HoldError('INVALID_REQUEST', `client_state must be at most ${MAX_CLIENT_STATE_BYTES} bytes of JSON`);
  }
}

function segmentId(segment: StagedSegment): string {
  return `${segment.offset}:${segment.size}`;
}

/** Recorded parts are all non-final, so each must reach the S3 minimum. */
function checkRecordedParts(parts: readonly SessionPart[], alreadyRecorded: number): void {
  parts.forEach((part, index) => {
    if (part.part_number !== index + 1) {
      throw new HoldError('INVALID_PART', `parts must be recorded in order: expected part ${index + 1}, got ${part.part_number}`);
    }
    if (index >= alreadyRecorded) {
      assertPartNumber(part.part_number);
      if (part.size < MIN_PART_SIZE) {
        throw new HoldError('PART_TOO_SMALL', `part ${part.part_number} is ${part.size} bytes; every part but the last must be at least ${MIN_PART_SIZE} bytes (5 MiB)`);
      }
    }
  });
}

function checkStagedSegments(staged: readonly StagedSegment[], start: number): void {
  let offset = start;
  for (const segment of staged) {
    if (segment.offset !== offset || segment.size < 1) {
      throw new HoldError('INVALID_REQUEST', `staged segments must be contiguous from offset ${start}`);
    }
    offset += segment.size;
  }
}
