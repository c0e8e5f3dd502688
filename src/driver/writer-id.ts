import { parseUploadName, uploadNameFromUuid } from '../protocol/upload-names.ts';
import { DriverError } from './types.ts';

/**
 * A writer id carries what resuming needs: the hold's upload name and the
 * provider's upload id, as `<uuid>.<base64url(upload id)>`. It is URL-safe and
 * grants nothing by itself: the hold still checks the caller's DID.
 */
export function encodeWriterId(uploadName: string, uploadId: string): string {
  const upload = parseUploadName(uploadName);
  if (!upload) throw new DriverError('INTERNAL', `the hold issued an invalid upload name ${uploadName}`);
  return `${upload.uuid}.${Buffer.from(uploadId, 'utf8').toString('base64url')}`;
}

export function decodeWriterId(id: string): { uploadName: string; uploadId: string } {
  const match = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{1,2048})$/.exec(id);
  if (!match) throw new DriverError('BLOB_UPLOAD_UNKNOWN', 'malformed upload id');
  try {
    const upload = uploadNameFromUuid(match[1] as string);
    return { uploadName: upload.value, uploadId: Buffer.from(match[2] as string, 'base64url').toString('utf8') };
  } catch {
    throw new DriverError('BLOB_UPLOAD_UNKNOWN', 'malformed upload id');
  }
}
