import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../../core/digest.ts';
import { parseByteRange } from '../../core/http-range.ts';
import { RegistryError } from '../errors.ts';
import type { Call, Handler, RegistryContext } from '../http/context.ts';

async function linkedBlob(ctx: RegistryContext, call: Call) {
  if (!parseDigest(call.reference)) throw new RegistryError('DIGEST_INVALID', `${call.reference} is not a valid digest`);
  const blob = await ctx.metadata.getBlob(call.name, call.reference);
  if (!blob) throw new RegistryError('BLOB_UNKNOWN', undefined, { detail: { digest: call.reference } });
  return blob;
}

export const headBlob: Handler = async (ctx, call) => {
  const blob = await linkedBlob(ctx, call);
  return call.reply
    .code(200)
    .header('content-length', String(blob.size))
    .header('docker-content-digest', blob.digest)
    .header('content-type', 'application/octet-stream')
    .header('accept-ranges', 'bytes')
    .send();
};

/** GET: a 307 to a presigned URL, or the bytes streamed through (with Range). */
export const getBlob: Handler = async (ctx, call) => {
  const blob = await linkedBlob(ctx, call);
  if (ctx.blobDelivery === 'redirect') {
    const { url } = await call.store.redirectURL(blob.digest, 'GET', { generation: blob.generation });
    return call.reply.code(307).header('location', url).header('docker-content-digest', blob.digest).send();
  }
  const range = parseByteRange(call.request.headers.range, blob.size);
  if (range.kind === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', undefined, { headers: { 'content-range': `bytes */${blob.size}` } });
  }
  const stream = await call.store.open(blob.digest, range.kind === 'range' ? { start: range.start, end: range.end } : undefined);
  call.reply
    .header('docker-content-digest', blob.digest)
    .header('content-type', 'application/octet-stream')
    .header('accept-ranges', 'bytes');
  if (range.kind === 'range') {
    call.reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${blob.size}`).header('content-length', String(range.end - range.start + 1));
  } else {
    call.reply.code(200).header('content-length', String(blob.size));
  }
  call.reply.hijack();
  call.reply.raw.writeHead(call.reply.statusCode, call.reply.getHeaders() as Record<string, string>);
  await pipeline(stream, call.reply.raw).catch(() => call.reply.raw.destroy());
};

/** Unlinks the blob from this repository; the bytes go when garbage collection finds them unreferenced. */
export const deleteBlob: Handler = async (ctx, call) => {
  await linkedBlob(ctx, call);
  const immutable = ctx.immutableTags.in(call.name);
  await ctx.metadata.unlinkBlob(call.name, call.reference, immutable ? { immutable } : {});
  return call.reply.code(202).header('content-length', '0').send();
};
