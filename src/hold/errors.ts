/**
 * Every error the hold API can answer with, in one table. A route throws a
 * `HoldError`; the HTTP layer turns it into
 * `{"error":{"code":"…","message":"…"}}` with the table's status.
 */
export const HOLD_ERRORS = Object.freeze({
  INVALID_REQUEST: { status: 400, message: 'the request body is not valid' },
  DIGEST_INVALID: { status: 400, message: 'digest is neither a valid content digest nor an upload name' },
  PART_NUMBER_INVALID: { status: 400, message: 'part_number must be an integer from 1 to 10000' },
  PART_TOO_SMALL: { status: 400, message: 'every part but the last must be at least 5 MiB' },
  INVALID_PART: { status: 400, message: 'a part or its ETag does not belong to this upload' },
  SIZE_INVALID: { status: 400, message: 'the object size does not match the expected size' },
  UNAUTHORIZED: { status: 401, message: 'a valid service token is required' },
  DENIED: { status: 403, message: 'the acting DID may not do this' },
  SIGNATURE_INVALID: { status: 403, message: 'the signed URL is invalid or has expired' },
  BLOB_UNKNOWN: { status: 404, message: 'no blob at that digest' },
  UPLOAD_UNKNOWN: { status: 404, message: 'no such upload for this DID' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  UPLOAD_STATE_CONFLICT: { status: 409, message: 'the upload changed since it was read' },
  UPLOAD_NOT_COMPLETE: { status: 409, message: 'the upload has not been completed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send application/json' },
  RANGE_INVALID: { status: 416, message: 'the requested range is not satisfiable' },
  INTERNAL: { status: 500, message: 'internal error' },
  UNSUPPORTED: { status: 501, message: 'the storage provider does not support this operation' },
  BACKEND_UNAVAILABLE: { status: 503, message: 'the storage backend is unavailable; retry later' },
} as const);

export type HoldErrorCode = keyof typeof HOLD_ERRORS;

export class HoldError extends Error {
  readonly code: HoldErrorCode;
  readonly status: number;

  constructor(code: HoldErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? HOLD_ERRORS[code].message, options);
    this.name = 'HoldError';
    this.code = code;
    this.status = HOLD_ERRORS[code].status;
  }

  toJSON(): { error: { code: HoldErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isHoldErrorCode(value: unknown): value is HoldErrorCode {
  return typeof value === 'string' && Object.hasOwn(HOLD_ERRORS, value);
}
