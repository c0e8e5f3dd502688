import { parseDigest } from '../core/digest.ts';
import type { UploadName } from '../protocol/upload-names.ts';
import type { UploadSession } from './sessions.ts';
import type { HoldContext } from './context.ts';

export async function discardUpload(ctx: HoldContext, upload: UploadName, session: UploadSession): Promise<void> {
  const key = ctx.dataKey(upload, session);
  if (session.state === 'starting') {
    // Its hold may have created the provider's upload and died before recording the id.
    for (const uploadId of await ctx.backend.multipartUploadsAt(key)) await ctx.backend.abortMultipartUpload(key, uploadId);
  } else if (session.upload_id !== '' && session.state === 'open') {
    await ctx.backend.abortMultipartUpload(key, session.upload_id);
  }
  let published = false;
  const publishing = session.publishing_digest === undefined ? undefined : parseDigest(session.publishing_digest);
  if (publishing) {
    // A publish that stopped after writing its reference: the object is the blob's bytes now.
    const blob = await ctx.backend.stat(ctx.key({ kind: 'blob', digest: publishing }));
    published = blob?.target === key;
  }
  await forgetUpload(ctx, upload, session, { keepObject: published });
}

/**
 * Deletes the upload's record, staged segments and (unless `keepObject`,
 * when it holds a published blob's bytes) its object. A version 1 upload's
 * bytes sit in the record's directory and go with it.
 */
export async function forgetUpload(ctx: HoldContext, upload: UploadName, session: UploadSession, options: { keepObject: boolean }): Promise<void> {
  ctx.sessions.forget(upload);
  const object = session.version === 1 || options.keepObject ? [] : [ctx.key({ kind: 'upload-object', upload })];
  await ctx.backend.delete([...(await ctx.sessions.keysOf(upload)), ...object]);
}
