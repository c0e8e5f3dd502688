import { parseDigest } from '../../core/digest.ts';
import { DriverError, isDriverError, type BlobWriter } from '../../driver/types.ts';
import { RegistryError } from '../errors.ts';
import { drain, parseContentRange } from '../http/body.ts';
import { actorOf, type Call, type Handler, type RegistryContext } from '../http/context.ts';
import { isRepositoryName, isUploadId } from '../names.ts';
import { BlobUnavailableError } from '../../metadata/oci/types.ts';
import type { UploadLease } from '../upload-lease.ts';

/** `Range` as the spec reports an upload's progress: inclusive, `0-0` when empty. */
export function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

function acceptedUpload(call: Call, writer: BlobWriter, status: 202 | 204) {
  // distribution-spec v1.1: clients that honour it send whole parts.
  if (writer.chunkMinLength !== undefined) call.reply.header('oci-chunk-min-length', String(writer.chunkMinLength));
  return call.reply
    .code(status)
    .header('location', uploadLocation(call.name, writer.id))
    .header('range', uploadRange(writer.size))
    .header('docker-upload-uuid', writer.id)
    .header('content-length', '0')
    .send();
}

/** Links the blob; `fresh` says this request just wrote its bytes (see docs/GC.md). */
async function created(ctx: RegistryContext, call: Call, digest: string, size: number, fresh: boolean) {
  try {
    await ctx.namespaceQuotas.assertFits(call.name, digest, size, actorOf(call.identity));
  } catch (err) {
    // The hold stored (or claimed) the bytes for this registry: a row lets garbage collection release them.
    await ctx.metadata.recordBlob({ digest, size }, call.identity.did, fresh).catch((recordErr: unknown) => call.request.log.warn({ err: recordErr, digest }, 'could not record a refused blob for GC'));
    throw err;
  }
  try {
    // A collection that released the blob while this push published it may have dropped the claim the publish wrote.
    if (await ctx.metadata.linkBlob(call.name, { digest, size }, { fresh, did: call.identity.did })) await claimRevived(ctx, call, digest);
  } catch (err) {
    // Released by a finished collection, yet the bytes are still stored (kept
    // by another registry's claim, or re-claimed by our own move): no pass
    // touches a released blob, and our claim keeps other registries' releases
    // off it, so the stored bytes are safe to link again.
    if (!(err instanceof BlobUnavailableError) || err.state !== 'deleted') throw err;
    // Only "no such bytes" means they are gone; a refusal (a quota) is the client's answer.
    const stored = await call.store.claim(digest).catch((claimErr: unknown) => {
      if (isDriverError(claimErr, 'BLOB_UNKNOWN')) return undefined;
      throw claimErr;
    });
    if (!stored) throw err;
    await ctx.metadata.linkBlob(call.name, { digest, size }, { fresh: true, did: call.identity.did });
  }
  return call.reply
    .code(201)
    .header('location', `/v2/${call.name}/blobs/${digest}`)
    .header('docker-content-digest', digest)
    .header('content-length', '0')
    .send();
}

/** Claims the bytes of a blob this push brought back; if they are gone again, it is not linked here. */
async function claimRevived(ctx: RegistryContext, call: Call, digest: string): Promise<void> {
  try {
    await call.store.claim(digest);
  } catch (err) {
    if (!isDriverError(err, 'BLOB_UNKNOWN')) throw err;
    await ctx.metadata.unlinkBlob(call.name, digest);
    throw new RegistryError('UNAVAILABLE', 'the blob was deleted while it was pushed; push it again', { cause: err });
  }
}

function requireDigest(value: string | undefined): string {
  if (!value || !parseDigest(value)) throw new RegistryError('DIGEST_INVALID', 'the digest parameter is missing or malformed');
  return value;
}

/** POST: a monolithic upload (`?digest=`), a mount (`?mount=&from=`), or a new session. */
export const startUpload: Handler = async (ctx, call) => {
  const { mount, from, digest } = call.query;
  if (mount !== undefined) {
    const mounted = await tryMount(ctx, call, requireDigest(mount), from);
    // Checked before the hold charges the caller for the mount.
    if (mounted) await ctx.namespaceQuotas.assertFits(call.name, mounted.digest, mounted.size, actorOf(call.identity));
    if (mounted && (await claimForMount(call, mounted.digest))) {
      await drain(call.request.raw);
      try {
        return await created(ctx, call, mounted.digest, mounted.size, false);
      } catch (err) {
        // Garbage collection is deleting it: fall through to a normal upload.
        if (!(err instanceof BlobUnavailableError)) throw err;
      }
    }
  }
  // A mount that happened is free of this; an upload is refused at the namespace's limit before a byte moves.
  await ctx.namespaceQuotas.assertRoom(call.name, actorOf(call.identity));
  if (digest !== undefined) {
    const expected = requireDigest(digest);
    // A monolithic upload is open for as long as its body streams.
    return withUploadSlot(ctx, call, async () => {
      const writer = await call.store.create({ digest: expected });
      try {
        ctx.metrics.bytesIn.inc(await writer.readFrom(call.request.raw));
        const descriptor = await writer.commit({ digest: expected, size: declaredLength(call) });
        return await created(ctx, call, descriptor.digest, descriptor.size, descriptor.existed !== true);
      } catch (err) {
        await writer.cancel().catch(() => {});
        throw err;
      }
    });
  }
  await drain(call.request.raw);
  return withUploadSlot(ctx, call, async () => {
    const writer = await call.store.create();
    const now = new Date();
    await ctx.metadata.createUpload(
      { id: writer.id, repository: call.name, did: call.identity.did, createdAt: now, ...(writer.state ? { state: writer.state } : {}) },
      { dropOlderThan: new Date(now.getTime() - UPLOAD_ROW_SECONDS * 1000) },
    );
    return acceptedUpload(call, writer, 202);
  });
};

/**
 * How long the registry remembers a session nobody finished. The hold aborts
 * one idle for its `uploadTtlSeconds` (a day by default); a week leaves room
 * for a session kept busy that long, and for a longer TTL.
 */
const UPLOAD_ROW_SECONDS = 7 * 86_400;

/**
 * Each session holds a multipart upload at the hold and a row here until it
 * is finished or expires, and a monolithic upload holds the same while its
 * body streams, so one DID may only have so many open at once.
 */
async function withUploadSlot<T>(ctx: RegistryContext, call: Call, work: () => Promise<T>): Promise<T> {
  const did = call.identity.did;
  // Taken before counting, so concurrent POSTs in this process cannot all pass the count.
  const ahead = ctx.openingUploads.increment(did);
  try {
    await refuseOverUploadLimit(ctx, call, ahead);
    return await work();
  } finally {
    ctx.openingUploads.decrement(did);
  }
}

async function refuseOverUploadLimit(ctx: RegistryContext, call: Call, openingAhead: number): Promise<void> {
  const { maxOpenUploadsPerDid: limit, uploadWindowSeconds } = ctx.limits;
  const rows = await ctx.metadata.countUploads(call.identity.did, new Date(Date.now() - uploadWindowSeconds * 1000));
  const open = rows + openingAhead;
  if (open < limit) return;
  throw new RegistryError('TOOMANYREQUESTS', `this account already has ${limit} open uploads; finish or cancel some first`, {
    headers: { 'retry-after': '60' },
    detail: { openUploads: open, limit },
  });
}

/** Links a blob from `from` (or any repository the caller may pull) without moving bytes. */
async function tryMount(ctx: RegistryContext, call: Call, digest: string, from: string | undefined) {
  const sources = from !== undefined ? (isRepositoryName(from) ? [from] : []) : await ctx.metadata.blobRepositories(digest);
  for (const source of sources) {
    if (!ctx.authorizer.mayPull(call.identity, source)) continue;
    const blob = await ctx.metadata.getBlob(source, digest);
    if (blob) return blob;
  }
  return undefined;
}

/**
 * A mount writes no bytes, but it makes this registry keep them: the hold
 * checks the caller's write access as it does for an upload (a refusal is
 * the caller's 403). Bytes gone from the hold mean no mount: upload instead.
 */
async function claimForMount(call: Call, digest: string): Promise<boolean> {
  try {
    await call.store.claim(digest);
    return true;
  } catch (err) {
    if (isDriverError(err, 'BLOB_UNKNOWN')) return false;
    throw err;
  }
}

/** The upload's row, if the caller owns it. */
async function ownedUpload(ctx: RegistryContext, call: Call) {
  if (!isUploadId(call.reference)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'malformed upload id');
  const record = await ctx.metadata.getUpload(call.name, call.reference);
  if (!record || record.did !== call.identity.did) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
  return record;
}

/**
 * Runs `work` with the upload's writer while this request alone writes the
 * upload: first among this process's requests (in arrival order), then
 * across instances (the upload's lease, whose epoch the writer names in
 * every write, so the hold refuses this request's writes once another has
 * taken over). The state the last request left is passed on, so a live
 * writer in that state needs no hold round trip; a live writer is only
 * reused if no other request wrote since it did. A request that ends
 * without giving its writer's state back leaves none to trust.
 */
function writingUpload<T>(ctx: RegistryContext, call: Call, work: (writer: BlobWriter, lease: UploadLease) => Promise<T>): Promise<T> {
  const arrived = performance.now();
  return inTurn(ctx, call, async () => {
    const record = await ownedUpload(ctx, call);
    const lease = await ctx.uploadLeases.take(record.id, arrived);
    try {
      await ctx.uploadStep('upload-taken', record.id);
      const fence = { epoch: lease.epoch, tookOver: lease.tookOver };
      const writer = await call.store.resume(call.reference, lease.state !== undefined ? { state: lease.state, fence } : { fence });
      return await work(writer, lease);
    } finally {
      await lease.release().catch(() => false);
    }
  });
}

/**
 * Reads this request's bytes into the writer, after checking the
 * `Content-Range` against the durable offset, and makes them durable. If the
 * lease is lost meanwhile the body is cut and nothing is acknowledged.
 */
async function receiveChunk(ctx: RegistryContext, call: Call, writer: BlobWriter, lease: UploadLease): Promise<void> {
  const range = parseContentRange(call.request.headers['content-range']);
  const length = declaredLength(call);
  if (range === 'invalid' || (range && range.start !== writer.size) || (range && length !== undefined && length !== range.end - range.start + 1)) {
    await drain(call.request.raw).catch(() => {});
    throw new RegistryError('RANGE_INVALID', `the upload continues at offset ${writer.size}`, {
      headers: { range: uploadRange(writer.size), location: uploadLocation(call.name, writer.id), 'docker-upload-uuid': writer.id },
    });
  }
  // The request stops reading and its writer stops sending: another request holds the upload now.
  const cut = () => {
    writer.abandon(lease.signal.reason as Error);
    call.request.raw.destroy();
  };
  lease.signal.addEventListener('abort', cut);
  try {
    ctx.metrics.bytesIn.inc(await writer.readFrom(call.request.raw, length !== undefined ? { length } : {}));
    await ctx.uploadStep('chunk-received', call.reference);
  } catch (err) {
    lease.assertHeld();
    // Ending the body's iteration destroys the stream, so `destroyed` alone
    // does not say the client went away: the writer's own errors pass through.
    if (err instanceof DriverError || (!call.request.raw.aborted && !call.request.raw.destroyed)) throw err;
    // The client went away mid-chunk: what arrived is kept (below) and the
    // client resumes from the offset GET reports.
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the client disconnected during the chunk', { cause: err });
  } finally {
    lease.signal.removeEventListener('abort', cut);
    // Whatever arrived stays durable, even if the client went away mid-chunk.
    await writer.close();
  }
  await ctx.uploadStep('chunk-durable', call.reference);
  lease.assertHeld();
}

export const patchUpload: Handler = async (ctx, call) =>
  writingUpload(ctx, call, async (writer, lease) => {
    await receiveChunk(ctx, call, writer, lease);
    // Acknowledged only if no other request took the upload meanwhile.
    if (!(await lease.release(writer.state))) lease.throwLost('another request took the upload over');
    return acceptedUpload(call, writer, 202);
  });

/**
 * Runs `work` once this process's earlier requests for the upload are done.
 * A client sends one request per upload at a time; a few more wait their
 * turn, and past `MAX_WAITING_PER_UPLOAD` a request is refused at once, so
 * repeating one request thousands of times holds no more than that many.
 */
async function inTurn<T>(ctx: RegistryContext, call: Call, work: () => Promise<T>): Promise<T> {
  const waiting = ctx.uploadWaiters.increment(call.reference);
  try {
    if (waiting >= MAX_WAITING_PER_UPLOAD) {
      throw new RegistryError('TOOMANYREQUESTS', 'too many requests for this upload at once; send one at a time', { headers: { 'retry-after': '1' } });
    }
    return await ctx.uploadLocks.run(call.reference, work);
  } finally {
    ctx.uploadWaiters.decrement(call.reference);
  }
}

/** Requests for one upload one process takes in at once (one running, the rest waiting). */
const MAX_WAITING_PER_UPLOAD = 4;

/** GET: the durable offset; it writes nothing, so it takes no lease. */
export const uploadStatus: Handler = async (ctx, call) =>
  inTurn(ctx, call, async () => {
    const record = await ownedUpload(ctx, call);
    const writer = await call.store.resume(call.reference, record.state !== undefined ? { state: record.state } : {});
    return acceptedUpload(call, writer, 204);
  });

/** PUT `?digest=`: an optional last chunk, then commit. */
export const finishUpload: Handler = async (ctx, call) => {
  const digest = requireDigest(call.query.digest);
  return writingUpload(ctx, call, async (writer, lease) => {
    await receiveChunk(ctx, call, writer, lease);
    const started = Date.now();
    try {
      const descriptor = await writer.commit({ digest });
      ctx.metrics.uploadSeconds.observe((Date.now() - writer.startedAt.getTime()) / 1000);
      call.request.log.debug({ commitMs: Date.now() - started }, 'upload committed');
      // Link first: if that fails the upload row survives and a retried PUT
      // finds the (already published) upload instead of a 404.
      const response = await created(ctx, call, descriptor.digest, descriptor.size, descriptor.existed !== true);
      await ctx.metadata.deleteUpload(call.reference);
      return response;
    } catch (err) {
      if (isDriverError(err, 'DIGEST_INVALID', 'SIZE_INVALID')) {
        await ctx.metadata.deleteUpload(call.reference);
      }
      throw err;
    }
  });
};

export const cancelUpload: Handler = async (ctx, call) =>
  writingUpload(ctx, call, async (writer) => {
    await writer.cancel();
    await ctx.metadata.deleteUpload(call.reference);
    return call.reply.code(204).send();
  });

function declaredLength(call: Call): number | undefined {
  const header = call.request.headers['content-length'];
  if (header === undefined) return undefined;
  const value = Number(header);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}
