import { randomUUID } from 'node:crypto';
import type { Digest } from '../../core/digest.ts';
import { HoldError } from '../errors.ts';
import { uploadNameFromUuid, type UploadName } from '../../protocol/upload-names.ts';
import { assertCompletableParts, assertNonFinalPartSizes, assertPartNumber, normalizeEtag } from './multipart-rules.ts';
import { samePartList } from '../../protocol/parts.ts';
import { completedParts, partSizeOf, uploadNameOf, type UploadRecord } from './records.ts';
import { mappingStorageErrors } from '../storage-errors.ts';
import { discardUpload } from '../cleanup/discard.ts';
import { assertCurrentWriter, laterEpoch, requireContentDigest, type HoldContext } from '../context.ts';
import { StorageError } from '../backends/types.ts';
import { MAX_PART_NUMBER, MIN_PART_SIZE } from '../../protocol/limits.ts';
import type { HoldInput, HoldPart, HoldPartUrl, HoldResponse, HoldStagedSegment, HoldUploadView } from '../../protocol/hold-api.ts';

/** How many times `/upload-status` reads the record again when it changed while being brought up to date. */
const STATUS_ATTEMPTS = 3;

const MAX_CLIENT_STATE_BYTES = 4096;

/** Multipart uploads from start to completion or abort, and the progress recorded on the way. */
export class Uploads {
  readonly #ctx: HoldContext;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  async start(did: string, input: HoldInput<'startMultipart'>): Promise<HoldResponse<'startMultipart'>> {
    this.#ctx.authorize(did, 'write');
    const expected = input.digest === undefined ? undefined : requireContentDigest(input.digest);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      // Already at the limit: refused before a byte moves.
      await this.#ctx.quotas?.assertRoom(did, 0);
      const record = await this.begin(this.newSession(uploadNameFromUuid(randomUUID()), did, 'multipart', expected, input.client_state));
      return { upload_id: record.upload_id, upload_name: record.name, expires_at: this.#expiresAt(record), ...(await this.#partUrls(record, input.presign_parts)) };
    });
  }

  /**
   * PUT URLs for the `count` parts after the recorded ones: presigning is
   * local, so handing them out with an answer the caller needs anyway saves
   * it a `/part-presigned-url` round trip per part.
   */
  async #partUrls(record: UploadRecord, count = 0): Promise<{ part_urls?: HoldPartUrl[] }> {
    if (count === 0 || record.state !== 'open' || record.kind !== 'multipart') return {};
    // Bytes already written that would pass the limit: no URL for more, and near it only URLs for what fits.
    const allowed = this.#ctx.quotas ? await this.#ctx.quotas.partsWithin(record.did, record.size, partSizeOf(record), count) : count;
    const key = this.#ctx.dataKey(uploadNameOf(record), record);
    const first = record.parts.length + 1;
    const numbers = Array.from({ length: Math.min(allowed, MAX_PART_NUMBER - first + 1) }, (_, index) => first + index);
    const urls = await Promise.all(numbers.map((partNumber) => this.#ctx.backend.presignUploadPart(key, record.upload_id, partNumber, this.#ctx.presignTtl)));
    return { part_urls: urls.map((url, index) => ({ part_number: numbers[index] as number, url: url.url, expires_at: url.expiresAt.toISOString() })) };
  }

  /**
   * Records the upload as starting, creates the provider's multipart upload,
   * then records its id: a hold that dies between the two writes leaves a
   * record, never an upload nothing names (see `discardUpload`). Two sequential
   * writes either way; the first costs one more small PUT.
   */
  async begin(starting: UploadRecord): Promise<UploadRecord> {
    const upload = uploadNameOf(starting);
    await this.#ctx.records.put(starting);
    let record = starting;
    try {
      const uploadId = await this.#ctx.backend.createMultipartUpload(this.#ctx.key({ kind: 'upload-object', upload }));
      record = { ...starting, upload_id: uploadId, state: 'open' };
      await this.#ctx.step('start:upload-created', upload.value);
      await this.#ctx.records.put(record);
      return record;
    } catch (err) {
      await discardUpload(this.#ctx, upload, record).catch(() => {});
      throw err;
    }
  }

  async complete(did: string, input: HoldInput<'completeMultipart'>): Promise<HoldResponse<'completeMultipart'>> {
    this.#ctx.authorize(did, 'write');
    assertCompletableParts(input.parts);
    return this.#ctx.updating(input.digest, () => this.#complete(did, input));
  }

  /**
   * Assembles the parts, then marks the record completed from them, on the
   * version read: if another writer took the upload over meanwhile (which it
   * records before writing a byte) the mark fails and nothing is published
   * from this completion.
   */
  async #complete(did: string, input: HoldInput<'completeMultipart'>): Promise<HoldResponse<'completeMultipart'>> {
    const { upload, record, etag } = await this.#ctx.ownedRecord(did, input.digest, input.upload_id);
    if (record.kind !== 'multipart') throw new HoldError('UPLOAD_UNKNOWN', 'this upload is not a multipart upload');
    assertCurrentWriter(record, input.writer_epoch);
    if (record.state === 'completed') {
      if (record.completed_parts && !samePartList(record.completed_parts, input.parts)) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload was completed from other parts');
      // Completed from parts the record cannot name (its hold died before recording them): the object is what it is, and the caller reads it back.
      return { upload_name: upload.value, size: record.completed_size ?? 0 };
    }
    const recorded = new Map(record.parts.map((part) => [part.part_number, part.size]));
    assertNonFinalPartSizes(input.parts.map((part) => ({ part_number: part.part_number, size: part.size ?? recorded.get(part.part_number) })));
    return mappingStorageErrors(async () => {
      const key = this.#ctx.dataKey(upload, record);
      await this.#ctx.complete(key, record.upload_id, input.parts.map((part) => ({ partNumber: part.part_number, etag: normalizeEtag(part.etag) })));
      const object = await this.#ctx.backend.stat(key);
      const size = object?.size ?? 0;
      await this.#ctx.records.put(
        {
          ...record,
          state: 'completed',
          completed_size: size,
          completed_parts: completedParts(input.parts),
          ...laterEpoch(record, input.writer_epoch),
          updated_at: this.#ctx.now().toISOString(),
        },
        etag,
      );
      return { upload_name: upload.value, size };
    });
  }

  /**
   * Discards the upload. Not one a `/move` has marked as publishing: that
   * publish may be writing the reference to its object right now (another
   * hold process), and only the janitor, once the upload has been idle for
   * its lifetime, can tell whether the object became the blob's bytes.
   */
  async abort(did: string, input: HoldInput<'abortMultipart'>): Promise<HoldResponse<'abortMultipart'>> {
    this.#ctx.authorize(did, 'write');
    const { upload, record } = await this.#ctx.ownedRecord(did, input.digest, input.upload_id);
    assertCurrentWriter(record, input.writer_epoch);
    if (record.publishing_digest !== undefined) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload is being published; it cannot be aborted');
    await mappingStorageErrors(() => discardUpload(this.#ctx, upload, record));
    return { aborted: true };
  }

  /**
   * The upload as it stands, brought up to date first: whole parts a driver
   * left unrecorded are recorded, a completion whose hold died before
   * recording it is recognised, and a `writer_epoch` above the recorded one
   * (a registry taking the upload over) is recorded, all in one conditional
   * write. A record that changed meanwhile is read again.
   */
  async status(did: string, input: HoldInput<'uploadStatus'>): Promise<HoldResponse<'uploadStatus'>> {
    this.#ctx.authorize(did, 'write');
    return this.#ctx.updating(input.digest, async () => {
      for (let attempt = 1; ; attempt++) {
        const { upload, record, etag } = await this.#ctx.ownedRecord(did, input.digest, input.upload_id);
        // Without an epoch this is a look at the upload, which any caller for its DID may take.
        if (input.writer_epoch !== undefined) assertCurrentWriter(record, input.writer_epoch);
        const current = await mappingStorageErrors(() => this.#broughtUpToDate(upload, record, etag, input.writer_epoch));
        if (current) return { ...this.#view(current), ...(await mappingStorageErrors(() => this.#partUrls(current, input.presign_parts))) };
        if (attempt >= STATUS_ATTEMPTS) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload kept changing while its status was read; retry');
      }
    });
  }

  /** The record after `status`'s updates, written if any; undefined when it changed since it was read. */
  async #broughtUpToDate(upload: UploadName, record: UploadRecord, etag: string, epoch: number | undefined): Promise<UploadRecord | undefined> {
    const found = await this.#unrecordedProgress(upload, record);
    const taken = epoch !== undefined && epoch > (record.writer_epoch ?? 0);
    if (!found && !taken) return record;
    const updated: UploadRecord = { ...record, ...found, ...laterEpoch(record, epoch), ...(taken ? { taken_over: true } : {}), updated_at: this.#ctx.now().toISOString() };
    if (!(await this.#ctx.records.putIfUnchanged(updated, etag))) return undefined;
    if (found?.staged) {
      const kept = new Set(found.staged.map(segmentId));
      await this.#ctx.backend.delete(record.staged.filter((segment) => !kept.has(segmentId(segment))).map((segment) => this.#ctx.stagedKey(upload, segment)));
    }
    return updated;
  }

  /**
   * What an open multipart record is missing. A driver records whole parts
   * only every few requests; the ones it has not recorded are durable all
   * the same, and are recorded as far as they run on from the recorded ones
   * at the last recorded part's size (a shorter last part sent ahead of a
   * commit is not one of them); the staged segments they cover go. And a
   * `/move` whose hold died after S3 assembled the parts but before the
   * record said so left an upload S3 no longer lists: its object is there,
   * so the upload is completed (from parts the record cannot name; whoever
   * publishes it verifies its bytes).
   */
  async #unrecordedProgress(upload: UploadName, record: UploadRecord): Promise<Partial<UploadRecord> | undefined> {
    if (record.kind !== 'multipart' || record.state !== 'open') return undefined;
    const key = this.#ctx.dataKey(upload, record);
    const last = record.parts.at(-1);
    let listed;
    try {
      listed = await this.#ctx.backend.uploadedPartsFrom(key, record.upload_id, (last?.part_number ?? 0) + 1, last ? MAX_PART_NUMBER : 1);
    } catch (err) {
      if (!(err instanceof StorageError) || err.code !== 'UPLOAD_UNKNOWN') throw err;
      const object = await this.#ctx.backend.stat(key);
      if (!object) throw err;
      return { state: 'completed', completed_size: object.size };
    }
    if (!last) return undefined;
    const unequal = listed.findIndex((part) => part.size !== last.size);
    const found = unequal < 0 ? listed : listed.slice(0, unequal);
    if (found.length === 0) return undefined;
    const parts = [...record.parts, ...found.map((part) => ({ part_number: part.partNumber, etag: normalizeEtag(part.etag), size: part.size }))];
    return { parts, staged: [], size: parts.reduce((sum, part) => sum + part.size, 0) };
  }

  /**
   * Records durable progress: parts whose ETags came back, and the staged
   * segments that now hold the tail. `base_size` is the size the caller last
   * saw; a mismatch means another writer moved on, and nothing changes.
   */
  async progress(did: string, input: HoldInput<'uploadProgress'>): Promise<HoldResponse<'uploadProgress'>> {
    this.#ctx.authorize(did, 'write');
    return this.#ctx.updating(input.digest, () => this.#ctx.startingOverIfStale((remembered) => this.#recordProgress(did, input, remembered)));
  }

  async #recordProgress(did: string, input: HoldInput<'uploadProgress'>, remembered: boolean): Promise<HoldResponse<'uploadProgress'>> {
    const { upload, record, etag } = await this.#ctx.openRecord(did, input.digest, input.upload_id, 'multipart', { remembered });
    assertCurrentWriter(record, input.writer_epoch);
    if (input.base_size !== record.size) {
      throw new HoldError('UPLOAD_STATE_CONFLICT', `the upload holds ${record.size} bytes, not ${input.base_size}`);
    }
    const parts = [...record.parts, ...(input.parts ?? []).map((part) => ({ ...part, etag: normalizeEtag(part.etag) }))];
    checkRecordedParts(parts, record.parts.length);
    const partBytes = parts.reduce((sum, part) => sum + part.size, 0);
    const stagedAsSent = input.staged ?? (input.parts?.length ? [] : record.staged);
    checkStagedSegments(stagedAsSent, partBytes);
    checkClientState(input.client_state);
    return mappingStorageErrors(async () => {
      const known = new Set(record.staged.map(segmentId));
      const staged = await this.#named(upload, stagedAsSent, known);
      const added = staged.filter((candidate) => !known.has(segmentId(candidate)));
      for (const segment of added) {
        const object = await this.#ctx.backend.stat(this.#ctx.stagedKey(upload, segment));
        if (object?.size !== segment.size) {
          throw new HoldError('SIZE_INVALID', `staged segment at offset ${segment.offset} holds ${object?.size ?? 0} bytes, not ${segment.size}`);
        }
      }
      const size = staged.reduce((sum, segment) => sum + segment.size, partBytes);
      const updated: UploadRecord = {
        ...record,
        parts,
        staged,
        size,
        client_state: input.client_state ?? record.client_state,
        ...laterEpoch(record, input.writer_epoch),
        updated_at: this.#ctx.now().toISOString(),
      };
      await this.#ctx.records.put(updated, etag);
      const kept = new Set(staged.map(segmentId));
      const dropped = record.staged.filter((segment) => !kept.has(segmentId(segment)));
      await this.#ctx.backend.delete(dropped.map((segment) => this.#ctx.stagedKey(upload, segment)));
      return { ...this.#view(updated), ...(await this.#partUrls(updated, input.presign_parts)) };
    });
  }

  /**
   * The staged segments with the names of their objects. A driver from
   * before segment ids reports a new segment by offset only; its staging URL
   * (from this hold) wrote a key of its own all the same, which is taken if
   * it is the only one at that offset with that size. Anything else must
   * name its `segment_id`: only keys the hold handed out count, so nobody
   * can replace a recorded segment.
   */
  async #named(upload: UploadName, staged: readonly HoldStagedSegment[], recorded: ReadonlySet<string>): Promise<HoldStagedSegment[]> {
    return Promise.all(
      staged.map(async (segment) => {
        if (segment.segment_id !== undefined || recorded.has(segmentId(segment))) return segment;
        const prefix = `${this.#ctx.key({ kind: 'upload-staged', upload, offset: segment.offset })}.`;
        const candidates: string[] = [];
        for await (const object of this.#ctx.backend.list(prefix)) if (object.size === segment.size) candidates.push(object.key.slice(prefix.length));
        const [only] = candidates;
        if (candidates.length !== 1 || only === undefined || !/^[0-9a-f]{32}$/.test(only)) {
          throw new HoldError('INVALID_REQUEST', 'a new staged segment needs the segment_id its staging URL came with');
        }
        return { ...segment, segment_id: only };
      }),
    );
  }

  /** A record for an upload about to start: no provider upload yet. */
  newSession(upload: UploadName, did: string, kind: UploadRecord['kind'], expected?: Digest, clientState?: Record<string, unknown>): UploadRecord {
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

  #view(record: UploadRecord): HoldUploadView {
    // Never reached: a record still starting is not usable, and no call hands one out.
    if (record.state === 'starting') throw new HoldError('UPLOAD_UNKNOWN');
    return {
      upload_name: record.name,
      upload_id: record.upload_id,
      state: record.state,
      created_at: record.created_at,
      updated_at: record.updated_at,
      expires_at: this.#expiresAt(record),
      size: record.size,
      ...(record.completed_size !== undefined ? { completed_size: record.completed_size } : {}),
      parts: [...record.parts],
      staged: [...record.staged],
      ...(record.client_state ? { client_state: record.client_state } : {}),
      ...(record.writer_epoch !== undefined ? { writer_epoch: record.writer_epoch } : {}),
      ...(record.taken_over ? { taken_over: true } : {}),
    };
  }

  #expiresAt(record: UploadRecord): string {
    return new Date(Date.parse(record.updated_at) + this.#ctx.uploadTtlMs).toISOString();
  }
}

function checkClientState(state: Record<string, unknown> | undefined): void {
  if (state && Buffer.byteLength(JSON.stringify(state)) > MAX_CLIENT_STATE_BYTES) {
    throw new HoldError('INVALID_REQUEST', `client_state must be at most ${MAX_CLIENT_STATE_BYTES} bytes of JSON`);
  }
}

/** A staged segment's identity: its object, and where it sits. */
function segmentId(segment: HoldStagedSegment): string {
  return `${segment.offset}:${segment.size}:${segment.segment_id ?? ''}`;
}

/** Recorded parts are all non-final, so each must reach the S3 minimum. */
function checkRecordedParts(parts: readonly HoldPart[], alreadyRecorded: number): void {
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

function checkStagedSegments(staged: readonly HoldStagedSegment[], start: number): void {
  let offset = start;
  for (const segment of staged) {
    if (segment.offset !== offset || segment.size < 1) {
      throw new HoldError('INVALID_REQUEST', `staged segments must be contiguous from offset ${start}`);
    }
    offset += segment.size;
  }
}
