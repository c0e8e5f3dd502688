import { parseDigest } from '../../core/digest.ts';
import type { UploadName } from '../../protocol/upload-names.ts';
import type { UploadRecord } from '../uploads/records.ts';
import type { HoldContext } from '../context.ts';

export async function discardUpload(ctx: HoldContext, upload: UploadName, record: UploadRecord): Promise<void> {
  const key = ctx.dataKey(upload, record);
  if (record.state === 'starting') {
    // Its hold may have created the provider's upload and died before recording the id.
    for (const uploadId of await ctx.backend.multipartUploadsAt(key)) await ctx.backend.abortMultipartUpload(key, uploadId);
  } else if (record.upload_id !== '' && record.state === 'open') {
    await ctx.backend.abortMultipartUpload(key, record.upload_id);
  }
  let published = false;
  const publishing = record.publishing_digest === undefined ? undefined : parseDigest(record.publishing_digest);
  if (publishing) {
    // A publish that stopped after writing its reference: the object is the blob's bytes now.
    const blob = await ctx.backend.stat(ctx.key({ kind: 'blob', digest: publishing }));
    published = blob?.target === key;
  }
  await forgetUpload(ctx, upload, record, { keepObject: published });
}

/**
 * Deletes the upload's record, staged segments and (unless `keepObject`,
 * when it holds a published blob's bytes) its object. A version 1 upload's
 * bytes sit in the record's directory and go with it.
 */
export async function forgetUpload(ctx: HoldContext, upload: UploadName, record: UploadRecord, options: { keepObject: boolean }): Promise<void> {
  ctx.records.forget(upload);
  const object = record.version === 1 || options.keepObject ? [] : [ctx.key({ kind: 'upload-object', upload })];
  await ctx.backend.delete([...(await ctx.records.keysOf(upload)), ...object]);
}
