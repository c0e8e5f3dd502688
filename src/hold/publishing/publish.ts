import type { Digest } from '../../core/digest.ts';
import { HoldError } from '../errors.ts';
import { parseUploadName, type UploadName } from '../../protocol/upload-names.ts';
import { assertCompletableParts, assertNonFinalPartSizes, normalizeEtag } from '../uploads/multipart-rules.ts';
import { samePartList } from '../../protocol/parts.ts';
import { completedParts, isUsable, type UploadRecord } from '../uploads/records.ts';
import { mappingStorageErrors } from '../storage-errors.ts';
import { forgetUpload } from '../cleanup/discard.ts';
import { assertCurrentWriter, laterEpoch, requireContentDigest, type HoldContext } from '../context.ts';
import { allSettled } from '../../core/settled.ts';
import type { CompletedPartInput, ObjectInfo } from '../backends/types.ts';
import type { HoldInput, HoldPart, HoldResponse } from '../../protocol/hold-api.ts';

/** `/move`: an upload published at its content address. */
export class Publisher {
  readonly #ctx: HoldContext;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  /**
   * Publishes a finished upload at its content address: claim the blob for
   * the calling registry, then, unless it is already there, write a reference
   * at the digest that names the upload's object (constant time), or copy the
   * bytes there on backends without references. The claim comes first, so a
   * concurrent `/release` by the same registry either sees it or has already
   * deleted the bytes (and the publish restores them).
   */
  async move(did: string, input: HoldInput<'move'>, issuer = ''): Promise<HoldResponse<'move'>> {
    this.#ctx.authorize(did, 'write');
    const upload = parseUploadName(input.from);
    if (!upload) throw new HoldError('DIGEST_INVALID', 'from must be an upload name this hold issued');
    const digest = requireContentDigest(input.to);
    if (input.parts) assertCompletableParts(input.parts);
    return this.#ctx.updating(input.from, () =>
      // With parts, the remembered record saves a read; a stale one fails the record's conditional write, and the publish runs again on a fresh read.
      input.parts ? this.#ctx.startingOverIfStale((remembered) => this.#publish(did, upload, digest, input, issuer, remembered)) : this.#publish(did, upload, digest, input, issuer, false),
    );
  }

  /**
   * With parts, four rounds of storage calls, each round's calls in
   * parallel: (1) the upload assembled, and this registry's claim; (2) no
   * deletion of the digest running, the object's size, and the record marked
   * completed (from which parts) and naming the digest it publishes; (3) the
   * reference, create-only; (4) the upload's record and staged segments
   * deleted. Without, the object is looked at first, so a wrong size
   * changes nothing. The claim precedes the deletion
   * check, which precedes any look at the destination (docs/GC.md); the
   * record names the digest before the reference exists, so a janitor that
   * finds it keeps a published object. A round ends only when all its calls
   * have, so a publish started over never overlaps the first attempt's.
   */
  async #publish(
    did: string,
    upload: UploadName,
    digest: Digest,
    input: { size?: number; parts?: readonly HoldPart[]; writer_epoch?: number },
    issuer: string,
    remembered: boolean,
  ): Promise<{ digest: string; size: number; existed: boolean }> {
    const read = await mappingStorageErrors(() => this.#ctx.records.read(upload, { remembered }));
    if (!read || read.record.did !== did || !isUsable(read.record)) throw new HoldError('UPLOAD_UNKNOWN');
    const { record, etag } = read;
    if (input.parts && record.kind !== 'multipart') throw new HoldError('UPLOAD_UNKNOWN', 'this upload is not a multipart upload');
    if (record.kind === 'multipart' && record.state !== 'completed' && !input.parts) {
      throw new HoldError('UPLOAD_NOT_COMPLETE', 'complete the multipart upload before moving it, or send its parts');
    }
    if (record.expected_digest && record.expected_digest !== digest.value) {
      throw new HoldError('DIGEST_INVALID', 'this upload was started for a different digest');
    }
    assertCurrentWriter(record, input.writer_epoch);
    if (input.parts && record.state === 'completed' && !(record.completed_parts && samePartList(record.completed_parts, input.parts))) {
      // Its object is other parts than the caller hashed, or parts the record cannot name (its hold died before
      // recording them; /upload-status found the object): publishing it on a running hash could put other bytes
      // under the digest. The caller reads the object back and publishes it without parts.
      throw new HoldError('UPLOAD_STATE_CONFLICT', 'the upload was completed from other parts, or from parts its record cannot name');
    }
    const parts = input.parts && record.state !== 'completed' ? this.#completionParts(record, input.parts, input.size) : undefined;
    const byReference = this.#publishesByReference(record);
    const marked: UploadRecord = {
      ...record,
      ...(parts && input.parts
        ? { state: 'completed', completed_size: input.parts.reduce((sum, part) => sum + part.size, 0), completed_parts: completedParts(input.parts) }
        : {}),
      ...(byReference ? { publishing_digest: digest.value } : {}),
      ...laterEpoch(record, input.writer_epoch),
      updated_at: this.#ctx.now().toISOString(),
    };
    const marks = marked.state !== record.state || marked.publishing_digest !== record.publishing_digest;
    return mappingStorageErrors(async () => {
      const source = this.#ctx.dataKey(upload, record);
      const destination = this.#ctx.key({ kind: 'blob', digest });
      // Without parts to complete, the data is checked before anything changes.
      const found = parts ? undefined : await this.#uploadedObject(source, record, input.size);
      // A repeated completion is accepted by the backend only for these very parts (S3: the object's multipart ETag).
      await allSettled([parts && this.#ctx.complete(source, record.upload_id, parts), this.#ctx.blobs.putClaim(digest, issuer)]);
      await this.#ctx.step('move:claimed', digest);
      // The quota charge's reads run beside this round; the charge itself waits for it (below).
      const prepared = this.#ctx.quotas?.prepare(did, digest);
      const [temp] = await allSettled([
        found ?? this.#uploadedObject(source, record, input.size),
        this.#ctx.blobs.awaitNoDeletion(digest),
        marks ? this.#ctx.records.put(marked, etag) : undefined,
      ]);
      await this.#ctx.step('move:deletion-checked', digest);
      // The exact quota check, on the object's real size, once no deletion of the digest runs (one that ran
      // has dropped its charges by now, and a charge seen before it is looked at again): a refusal publishes
      // nothing, and a publish that fails after charging with nothing stored gives the charge back.
      const charged = prepared ? await this.#ctx.quotas?.charge(did, digest, temp.size, prepared) : false;
      try {
        return await this.#place(upload, record, etag, digest, source, destination, temp, byReference);
      } catch (err) {
        // Given back only when nothing was stored at the digest (a failure after the reference was written keeps it).
        if (charged && !(await this.#ctx.backend.stat(destination).catch(() => true))) await this.#ctx.quotas?.refund(did, digest, temp.size).catch(() => {});
        throw err;
      }
    });
  }

  /** Rounds 3 and 4: the reference (or copy) at the digest, then the upload forgotten. */
  async #place(
    upload: UploadName,
    record: UploadRecord,
    etag: string,
    digest: Digest,
    source: string,
    destination: string,
    temp: ObjectInfo,
    byReference: boolean,
  ): Promise<{ digest: string; size: number; existed: boolean }> {
    let existing: ObjectInfo | undefined;
    if (byReference) {
      await this.#ctx.step('move:destination-checked', digest);
      if (await this.#ctx.backend.putReference(destination, source, temp.size)) {
        await this.#forgetPublished(upload, record, { keepObject: true });
        return { digest: digest.value, size: temp.size, existed: false };
      }
      existing = await this.#ctx.backend.stat(destination);
      if (!existing) throw new HoldError('UPLOAD_STATE_CONFLICT', 'the blob changed while it was published; retry');
    } else {
      existing = await this.#ctx.backend.stat(destination);
      await this.#ctx.step('move:destination-checked', digest);
      if (!existing) await this.#ctx.backend.copy(source, destination, temp.size);
    }
    if (existing?.target === source) {
      // A retry of a publish that wrote its reference: the object is the blob's bytes now.
      await this.#forgetPublished(upload, record, { keepObject: true });
      return { digest: digest.value, size: existing.size, existed: false };
    }
    if (isLegacySingle(record)) {
      // Its PUT URL may still be live: the janitor removes the record, and whatever a late PUT wrote, after the TTL.
      await this.#ctx.records.put({ ...record, state: 'completed', updated_at: this.#ctx.now().toISOString() }, etag);
    } else {
      await this.#forgetPublished(upload, record, { keepObject: false });
    }
    return { digest: digest.value, size: existing?.size ?? temp.size, existed: existing !== undefined };
  }

  /** The upload's data, of `size` bytes when given; a single upload's one part is completed here. */
  async #uploadedObject(source: string, record: UploadRecord, size: number | undefined): Promise<ObjectInfo> {
    const object = (await this.#ctx.backend.stat(source)) ?? (await this.#completeSinglePart(source, record, size));
    if (!object) throw new HoldError('UPLOAD_NOT_COMPLETE', 'the upload has no data yet');
    if (size !== undefined && size !== object.size) throw new HoldError('SIZE_INVALID', `the upload holds ${object.size} bytes, not ${size}`);
    return object;
  }

  /** The parts a publish completes the upload from: sizes as recorded, and adding up to `size` when given. */
  #completionParts(record: UploadRecord, parts: readonly HoldPart[], size: number | undefined): CompletedPartInput[] {
    const recorded = new Map(record.parts.map((part) => [part.part_number, part.size]));
    for (const part of parts) {
      const known = recorded.get(part.part_number);
      if (known !== undefined && known !== part.size) throw new HoldError('INVALID_PART', `part ${part.part_number} was recorded with ${known} bytes, not ${part.size}`);
    }
    assertNonFinalPartSizes(parts);
    const total = parts.reduce((sum, part) => sum + part.size, 0);
    if (size !== undefined && size !== total) throw new HoldError('SIZE_INVALID', `the parts hold ${total} bytes, not ${size}`);
    return parts.map((part) => ({ partNumber: part.part_number, etag: normalizeEtag(part.etag) }));
  }

  /**
   * `forgetUpload` for a publish, without listing: the record names every
   * staged segment; a late PUT's leftover is an orphan the janitor collects.
   */
  async #forgetPublished(upload: UploadName, record: UploadRecord, options: { keepObject: boolean }): Promise<void> {
    if (record.version === 1) return forgetUpload(this.#ctx, upload, record, options);
    this.#ctx.records.forget(upload);
    const staged = record.staged.map((segment) => this.#ctx.stagedKey(upload, segment));
    const object = options.keepObject ? [] : [this.#ctx.key({ kind: 'upload-object', upload })];
    await this.#ctx.backend.delete([this.#ctx.key({ kind: 'upload-session', upload }), ...staged, ...object]);
  }

  #publishesByReference(record: UploadRecord): boolean {
    return this.#ctx.backend.capabilities.references && record.version === 2 && !isLegacySingle(record);
  }

  /**
   * Completes a single upload's one part, when it has been uploaded; nothing
   * changes when `size` does not match it.
   */
  async #completeSinglePart(key: string, record: UploadRecord, size: number | undefined): Promise<ObjectInfo | undefined> {
    if (record.kind !== 'single' || isLegacySingle(record)) return undefined;
    const part = await this.#ctx.backend.uploadedPart(key, record.upload_id, 1);
    if (!part) return undefined;
    if (size !== undefined && size !== part.size) throw new HoldError('SIZE_INVALID', `the upload holds ${part.size} bytes, not ${size}`);
    await this.#ctx.backend.completeMultipartUpload(key, record.upload_id, [{ partNumber: 1, etag: normalizeEtag(part.etag) }]);
    return this.#ctx.backend.stat(key);
  }
}

/** A single upload from before single uploads were multipart: its bytes came through a PutObject URL. */
function isLegacySingle(record: UploadRecord): boolean {
  return record.kind === 'single' && record.upload_id === '';
}
