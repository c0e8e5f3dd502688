import { StorageError, type StorageErrorCode } from './types.ts';

/** S3 error names, as the SDK reports them, to storage error codes. */
const S3_ERROR_CODES: Readonly<Record<string, StorageErrorCode>> = Object.freeze({
  NoSuchKey: 'NOT_FOUND',
  NotFound: 'NOT_FOUND',
  NoSuchUpload: 'UPLOAD_UNKNOWN',
  InvalidPart: 'INVALID_PART',
  InvalidPartOrder: 'INVALID_PART',
  EntityTooSmall: 'PART_TOO_SMALL',
  PreconditionFailed: 'PRECONDITION_FAILED',
  ConditionalRequestConflict: 'PRECONDITION_FAILED',
  NotImplemented: 'UNSUPPORTED',
  SlowDown: 'UNAVAILABLE',
  ServiceUnavailable: 'UNAVAILABLE',
  InternalError: 'UNAVAILABLE',
  RequestTimeout: 'UNAVAILABLE',
  TimeoutError: 'UNAVAILABLE',
  AbortError: 'UNAVAILABLE',
});

interface SdkErrorShape {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  code?: string;
}

/**
 * Maps an SDK error to a `StorageError`. The message names the operation and
 * S3's error code but never the request, whose URL may carry credentials.
 */
export function mapS3Error(operation: string, err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const shape = (err ?? {}) as SdkErrorShape;
  const name = shape.Code ?? shape.name ?? 'Error';
  const status = shape.$metadata?.httpStatusCode;
  let code = S3_ERROR_CODES[name];
  if (!code && status === 404) code = 'NOT_FOUND';
  if (!code && (status === 412 || status === 409)) code = 'PRECONDITION_FAILED';
  if (!code && (status === undefined || status >= 500)) code = 'UNAVAILABLE';
  if (!code && isNetworkError(shape.code)) code = 'UNAVAILABLE';
  return new StorageError(code ?? 'INTERNAL', `${operation} failed: ${name}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
}

function isNetworkError(code: string | undefined): boolean {
  return code !== undefined && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code);
}
