import { isDriverError, type DriverErrorCode } from '../driver/types.ts';

/**
 * Errors in the shape Verdaccio's storage layer checks: `code` (it tests
 * `ENOENT` and `EEXISTS`) and `status`, which its error handler answers
 * with (anything else is a bare 500).
 */
export interface VerdaccioError extends Error {
  code: string;
  status: number;
  statusCode: number;
}

function verdaccioError(code: string, status: number, message: string, cause?: unknown): VerdaccioError {
  return Object.assign(new Error(message, cause === undefined ? undefined : { cause }), { code, status, statusCode: status });
}

export const alreadyExists = (what: string) => verdaccioError('EEXISTS', 409, `${what} already exists`);
export const notFound = (what: string) => verdaccioError('ENOENT', 404, `${what} not found`);
export const unavailable = (message: string) => verdaccioError('EUNAVAILABLE', 503, message);

/**
 * What each driver error means to an npm client. The plugin hashes and sizes
 * a tarball itself, so a digest, size or range the hold refuses means the
 * stored upload changed under it (try again), never the client's mistake.
 * Refused credentials and unsupported storage are the operator's to fix.
 */
const FROM_DRIVER: Record<DriverErrorCode, { code: string; status: number; says: string }> = {
  BLOB_UNKNOWN: { code: 'ENOENT', status: 404, says: 'its bytes are not at the hold' },
  BLOB_UPLOAD_UNKNOWN: { code: 'EUNAVAILABLE', status: 503, says: 'the hold no longer has its upload; publish it again' },
  BLOB_UPLOAD_INVALID: { code: 'EUNAVAILABLE', status: 503, says: 'the hold refused its upload; publish it again' },
  DIGEST_INVALID: { code: 'EUNAVAILABLE', status: 503, says: 'the stored bytes did not match the bytes sent; publish it again' },
  SIZE_INVALID: { code: 'EUNAVAILABLE', status: 503, says: 'the stored size did not match the bytes sent; publish it again' },
  RANGE_INVALID: { code: 'EUNAVAILABLE', status: 503, says: 'the stored upload changed while it was written; publish it again' },
  BLOB_TOO_LARGE: { code: 'ETOOLARGE', status: 413, says: "it is larger than the hold's limit" },
  BUSY: { code: 'ETOOMANY', status: 429, says: 'the hold is busy with this account; retry later' },
  UNAVAILABLE: { code: 'EUNAVAILABLE', status: 503, says: 'the hold is unavailable; retry later' },
  DENIED: { code: 'EINTERNAL', status: 500, says: "the hold refused this server's credentials" },
  UNSUPPORTED: { code: 'EINTERNAL', status: 500, says: "the hold's storage cannot do this" },
  INTERNAL: { code: 'EINTERNAL', status: 500, says: 'the hold failed' },
};

/**
 * A driver error as Verdaccio's error, about `what` ("tarball x.tgz").
 * Verdaccio's own errors pass through; anything else is a 500.
 */
export function toVerdaccioError(err: unknown, what: string): VerdaccioError {
  if (isDriverError(err)) {
    const mapped = FROM_DRIVER[err.code];
    return verdaccioError(mapped.code, mapped.status, `${what}: ${mapped.says}`, err);
  }
  if (isVerdaccioError(err)) return err;
  return verdaccioError('EINTERNAL', 500, `${what}: ${err instanceof Error ? err.message : String(err)}`, err);
}

function isVerdaccioError(err: unknown): err is VerdaccioError {
  return err instanceof Error && typeof (err as Partial<VerdaccioError>).code === 'string' && typeof (err as Partial<VerdaccioError>).status === 'number';
}
