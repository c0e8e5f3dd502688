import { createHash } from 'node:crypto';
import type { Digest, DigestAlgorithm } from '../core/digest.ts';
import { isHoldError, mappingHoldErrors, toDriverError } from './errors.ts';
import type { HoldPart } from '../protocol/hold-api.ts';
import type { PartPipeline } from './part-pipeline.ts';
import { DriverError, isDriverError } from './types.ts';
import type { UploadRef, WriterContext } from './writer-context.ts';

/** What a commit checks and sends, as the writer had it once every part was in. */
export interface CommitInput {
  digest: Digest;
  /** Bytes the upload holds. */
  size: number;
  /** The size the client asserted, if it did. */
  expectedSize: number | undefined;
  /** The running hash's digest, when the writer has one in the digest's algorithm. */
  runningDigest: string | undefined;
  /** The parts to send the last of and complete; undefined when the hold already completed them. */
  parts: { pipeline: PartPipeline; tail: Buffer } | undefined;
  /** Removes the upload after a mismatch; never throws. */
  reject: () => Promise<void>;
  /** Called once the hold has assembled every byte into its object. */
  assembled: () => void;
  /** The writer epoch the writer writes as (see `UploadFence`). */
  epoch: number | undefined;
}

/**
 * Verifies the size and the digest (by the running hash, or by reading the
 * assembled object back), sends the last part and publishes the blob at its
 * digest. On a mismatch the upload is removed and `SIZE_INVALID` or
 * `DIGEST_INVALID` thrown. Resolves whether the blob was already stored.
 */
export async function verifyAndPublish(ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'step'>, upload: UploadRef, commit: CommitInput): Promise<boolean> {
  const { digest, size } = commit;
  if (commit.expectedSize !== undefined && commit.expectedSize !== size) {
    await commit.reject();
    throw new DriverError('SIZE_INVALID', `the upload holds ${size} bytes, not ${commit.expectedSize}`);
  }
  let verified = false;
  if (commit.runningDigest !== undefined) {
    if (commit.runningDigest !== digest.value) {
      await commit.reject();
      throw new DriverError('DIGEST_INVALID', `the uploaded content hashes to ${commit.runningDigest}, not ${digest.value}`);
    }
    verified = true;
  }
  let completing: HoldPart[] | undefined;
  if (commit.parts) {
    const parts = await commit.parts.pipeline.finish(commit.parts.tail);
    await ctx.step('parts-finished', upload.uploadName);
    if (verified) {
      // Verified bytes need no reading back: the hold completes and publishes them in one call.
      completing = parts;
    } else {
      await mappingHoldErrors(() => ctx.hold.completeMultipart(ctx.did, upload.uploadName, upload.uploadId, parts, commit.epoch));
      await ctx.step('completed', upload.uploadName);
      commit.assembled();
    }
  }
  if (!verified) await readBack(ctx, upload, commit);
  let existed: boolean;
  try {
    existed = await publish(ctx, upload, digest.value, size, completing, commit.epoch);
  } catch (err) {
    // Completed meanwhile from parts its record cannot name (this /move's own answer lost, then a status
    // elsewhere recorded the completion): the hold takes no part list for content then; read the object back.
    if (!completing || !isDriverError(err, 'BLOB_UPLOAD_INVALID')) throw err;
    await readBack(ctx, upload, commit);
    existed = await publish(ctx, upload, digest.value, size, undefined, commit.epoch);
  }
  await ctx.step('moved', upload.uploadName);
  return existed;
}

/** Hashes the assembled object; on a mismatch removes the upload and throws `DIGEST_INVALID`. */
async function readBack(ctx: Pick<WriterContext, 'hold' | 'did' | 'transport' | 'step'>, upload: UploadRef, commit: CommitInput): Promise<void> {
  const actual = await hashStoredObject(ctx, upload, commit.digest.algorithm);
  await ctx.step('read-back', upload.uploadName);
  if (actual !== commit.digest.value) {
    await commit.reject();
    throw new DriverError('DIGEST_INVALID', `the uploaded content hashes to ${actual}, not ${commit.digest.value}`);
  }
}

/** Reads the assembled object back once; resolves to its digest. For writers without a running hash. */
async function hashStoredObject(ctx: Pick<WriterContext, 'hold' | 'did' | 'transport'>, upload: UploadRef, algorithm: DigestAlgorithm): Promise<string> {
  const { hold, did, transport } = ctx;
  const hash = createHash(algorithm);
  const stream = await transport.getStream(async () =>
    (await mappingHoldErrors(() => hold.getPresignedUrl(did, upload.uploadName, { uploadId: upload.uploadId }))).url,
  );
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}`;
}

/** Moves the upload to its digest, completing it first with `parts`; resolves whether the blob was already there. */
async function publish(
  ctx: Pick<WriterContext, 'hold' | 'did'>,
  upload: UploadRef,
  digest: string,
  size: number,
  parts: readonly HoldPart[] | undefined,
  epoch: number | undefined,
): Promise<boolean> {
  const { hold, did } = ctx;
  try {
    return (await hold.move(did, upload.uploadName, digest, { size, ...(parts ? { parts } : {}), epoch })).existed;
  } catch (err) {
    // A retried move whose first attempt succeeded finds the upload gone.
    if (!isHoldError(err, 'UPLOAD_UNKNOWN')) throw toDriverError(err);
    const existing = await mappingHoldErrors(() => hold.stat(did, digest));
    if (existing.size !== size) throw new DriverError('INTERNAL', 'the upload vanished before it was published');
    return true;
  }
}
